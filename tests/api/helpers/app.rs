//! `TestApp`: the real app spawned on port 0 with a database and Redis
//! prefix of its own, and the typed calls tests make on it.

use super::*;

/// A running app and a client for it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The operations endpoints' own address, when OPS_LISTEN_ADDR is set.
    pub ops_address: Option<String>,
    /// The app's own pool, for checking stored state.
    pub db: DatabaseConnection,
    database_url: String,
    /// The app's Redis.
    pub redis_url: String,
    /// The app's Redis key prefix.
    pub redis_key_prefix: String,
    shutdown: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    /// Sends an admin token with every request.
    pub client: reqwest::Client,
}

pub(super) fn init_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt().with_env_filter("info").try_init();
    }
}

/// Subscriptions one socket may hold in the test apps.
pub const SUBSCRIPTIONS_PER_SOCKET: usize = 20;

/// A change to the app's settings.
type Adjust<T> = Box<dyn FnOnce(&mut T)>;

/// How to spawn a test app: each part defaults to a fresh database, the
/// shared Redis, a key prefix of its own, and the test settings.
#[derive(Default)]
pub struct TestAppBuilder {
    database_url: Option<String>,
    redis_url: Option<String>,
    redis_key_prefix: Option<String>,
    config: Vec<Adjust<Config>>,
    serve: Vec<Adjust<ServeConfig>>,
}

impl TestApp {
    /// A builder of a test app.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    /// Another replica of the same service: same database, Redis and prefix.
    pub async fn replica(&self) -> TestApp {
        TestApp::builder()
            .database(self.database_url.clone())
            .redis(&self.redis_url)
            .prefix(&self.redis_key_prefix)
            .spawn()
            .await
    }
}

impl TestAppBuilder {
    /// On this existing database (e.g. one a killed binary used).
    pub fn database(mut self, url: String) -> Self {
        self.database_url = Some(url);
        self
    }

    /// Against the Redis at `url`.
    pub fn redis(mut self, url: &str) -> Self {
        self.redis_url = Some(url.to_owned());
        self
    }

    /// With this Redis key prefix.
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.redis_key_prefix = Some(prefix.to_owned());
        self
    }

    /// With `adjust` applied to its settings (e.g. to run the workers).
    pub fn config(mut self, adjust: impl FnOnce(&mut Config) + 'static) -> Self {
        self.config.push(Box::new(adjust));
        self
    }

    /// With `adjust` applied to its HTTP settings.
    pub fn serve(mut self, adjust: impl FnOnce(&mut ServeConfig) + 'static) -> Self {
        self.serve.push(Box::new(adjust));
        self
    }

    /// Spawns it.
    pub async fn spawn(self) -> TestApp {
        init_logs();
        let database_url = match self.database_url {
            Some(url) => url,
            None => fresh_database().await,
        };
        let redis = self.redis_url.unwrap_or_else(redis_url);
        let prefix = self
            .redis_key_prefix
            .unwrap_or_else(|| format!("test:{}:", Uuid::now_v7().simple()));
        let (config, serve) = (self.config, self.serve);
        spawn_configured(
            database_url,
            redis,
            prefix,
            |c| config.into_iter().for_each(|adjust| adjust(c)),
            |s| serve.into_iter().for_each(|adjust| adjust(s)),
        )
        .await
    }
}

/// Spawns the real app on port 0 with a fresh database and Redis prefix.
pub async fn spawn_app() -> TestApp {
    TestApp::builder().spawn().await
}

/// Spawns the app with a fresh database against the Redis at `redis_url`.
pub async fn spawn_app_with_redis(redis_url: &str) -> TestApp {
    TestApp::builder().redis(redis_url).prefix("test:").spawn().await
}

/// Spawns the app on an existing database (e.g. one a killed binary used).
pub async fn spawn_app_on_database(database_url: String, adjust: impl FnOnce(&mut Config) + 'static) -> TestApp {
    TestApp::builder().database(database_url).config(adjust).spawn().await
}

/// Spawns the app with a fresh database, with `adjust` applied to its settings
/// (e.g. to run the workers, which tests leave off by default).
pub async fn spawn_app_with(redis_url: Option<&str>, adjust: impl FnOnce(&mut Config) + 'static) -> TestApp {
    let builder = TestApp::builder().config(adjust);
    match redis_url {
        Some(url) => builder.redis(url),
        None => builder,
    }
    .spawn()
    .await
}

/// Spawns the app with a fresh database and these HTTP settings.
pub async fn spawn_app_serving(adjust_serve: impl FnOnce(&mut ServeConfig) + 'static) -> TestApp {
    TestApp::builder().serve(adjust_serve).spawn().await
}

pub(super) async fn spawn_configured(
    database_url: String,
    redis_url: String,
    redis_key_prefix: String,
    adjust: impl FnOnce(&mut Config),
    adjust_serve: impl FnOnce(&mut ServeConfig),
) -> TestApp {
    let mut config = Config::for_tests(&database_url, &redis_url, &redis_key_prefix);
    // Many apps share one PostgreSQL; workers run only where a test asks.
    config.database_max_connections = 5;
    config.run_workers = false;
    adjust(&mut config);
    let mut serve = ServeConfig {
        listen: "127.0.0.1:0".parse().expect("literal address"),
        graphiql: true,
        max_body_bytes: 1024 * 1024,
        jwt_secret: Some(JWT_SECRET.to_owned()),
        jwt_public_key_file: None,
        jwt_jwks_url: None,
        jwt_issuer: None,
        jwt_audience: None,
        jwt_role_claim: "role".to_owned(),
        ws_init_timeout: Duration::from_secs(10),
        ops_listen: None,
        introspection: true,
        rate_limit_per_second: 0,
        rate_limit_fail_closed: vec!["admin".to_owned(), "viewer".to_owned()],
        max_ws_connections: 1_000,
        max_subscriptions_per_socket: SUBSCRIPTIONS_PER_SOCKET,
    };
    adjust_serve(&mut serve);
    let app = App::build(config, serve, false)
        .await
        .unwrap_or_else(|e| panic!("the app did not start: {e}"));
    let address = format!("http://{}", app.addr);
    let ops_address = app.ops_addr.map(|addr| format!("http://{addr}"));
    let db = app.state.db.clone();
    let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async move {
        let _ = shutdown_rx.await;
    }));
    TestApp {
        address,
        ops_address,
        db,
        database_url,
        redis_url,
        redis_key_prefix,
        client: client_with(Some(&token(Role::Admin))),
        shutdown: std::sync::Mutex::new(Some(shutdown)),
    }
}

impl TestApp {
    /// Shuts the app down as SIGTERM would.
    pub fn shut_down(&self) {
        if let Some(tx) = self.shutdown.lock().unwrap().take() {
            let _ = tx.send(());
        }
    }

    /// POSTs a GraphQL document and returns the whole JSON response.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        post_graphql(self.client.post(format!("{}/graphql", self.address)), query, variables).await
    }

    /// Waits (3 s at most) until previewing `cart` gives `discount`: the
    /// snapshot follows changes within a second.
    pub async fn wait_until_priced(&self, cart: &Value, discount: i64) {
        let preview = "query Priced($c: CartInput!) { previewPromotions(cart: $c) { discountTotal } }";
        until("the cart is priced", Duration::from_secs(3), async || {
            self.data(preview, json!({ "c": cart })).await["previewPromotions"]["discountTotal"] == discount
        })
        .await;
    }

    /// `data` of a response that must have no errors.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let response = self.graphql(query, variables).await;
        assert!(response.get("errors").is_none(), "unexpected errors: {response:#}");
        response["data"].clone()
    }

    /// The one error of a response that must fail: (code, field).
    pub async fn error(&self, query: &str, variables: Value) -> (String, Option<String>) {
        let response = self.graphql(query, variables).await;
        let errors = response["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("expected an error: {response:#}"));
        assert_eq!(errors.len(), 1, "expected one error: {response:#}");
        let ext = &errors[0]["extensions"];
        let code = ext["code"]
            .as_str()
            .unwrap_or_else(|| panic!("error without code: {response:#}"));
        (code.to_owned(), ext["field"].as_str().map(str::to_owned))
    }

    /// GET a path; (status, body as JSON).
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        get_json_with(&self.client, format!("{}{path}", self.address)).await
    }

    /// Outbox rows as (event_type, aggregate_type, aggregate_id), oldest first.
    pub async fn outbox(&self) -> Vec<(String, String, String)> {
        self.db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT event_type, aggregate_type, aggregate_id FROM outbox_events ORDER BY seq",
            ))
            .await
            .expect("read the outbox")
            .iter()
            .map(|r| {
                (
                    r.try_get("", "event_type").expect("event_type"),
                    r.try_get("", "aggregate_type").expect("aggregate_type"),
                    r.try_get("", "aggregate_id").expect("aggregate_id"),
                )
            })
            .collect()
    }

    /// The id of the transaction that last wrote a row (`xmin`), to prove
    /// that a change and its outbox row were committed together.
    pub async fn xmin(&self, table: &str, column: &str, id: &str) -> String {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!("SELECT xmin::text AS x FROM {table} WHERE {column}::text = $1"),
                [id.into()],
            ))
            .await
            .expect("read xmin")
            .unwrap_or_else(|| panic!("no row {table}.{column} = {id}"));
        row.try_get("", "x").expect("xmin")
    }

    /// Creates a campaign and returns its id.
    pub async fn create_campaign(&self, input: Value) -> String {
        let data = self
            .data(
                "mutation($i: CampaignInput!) { createCampaign(input: $i) { id } }",
                json!({ "i": input }),
            )
            .await;
        data["createCampaign"]["id"].as_str().expect("id").to_owned()
    }

    /// Creates a promotion and returns its id.
    pub async fn create_promotion(&self, input: Value) -> String {
        let data = self
            .data(
                "mutation($i: PromotionInput!) { createPromotion(input: $i) { id } }",
                json!({ "i": input }),
            )
            .await;
        data["createPromotion"]["id"].as_str().expect("id").to_owned()
    }

    /// Creates a coupon and returns its code as stored.
    pub async fn create_coupon(&self, input: Value) -> String {
        let data = self
            .data(
                "mutation($i: CouponInput!) { createCoupon(input: $i) { code } }",
                json!({ "i": input }),
            )
            .await;
        data["createCoupon"]["code"].as_str().expect("code").to_owned()
    }
}
