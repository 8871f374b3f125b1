//! `spawn_app()` and typed helpers to talk to it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use migration::{Migrator, MigratorTrait};
use promotions::app::App;
use promotions::auth::Role;
use promotions::config::{Config, ServeConfig};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

/// The PostgreSQL server the tests use (its `postgres` database administers).
fn server_url() -> String {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    // Keep the server part; the database name is the tests' business.
    let base = url.split('?').next().unwrap_or(&url);
    match base.rfind('/') {
        Some(i) if i > "postgres://".len() => base[..i].to_owned(),
        _ => base.to_owned(),
    }
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

const LOCK_KEY: i64 = 0x7072_6f6d_6f73; // "promos"
const TEST_DB_PREFIX: &str = "promotions_test_";
/// Test databases older than this are dropped by the next run (a crashed
/// run leaves its databases behind; nothing else cleans them).
const STALE_AFTER_SECS: u64 = 1800;

fn template_name() -> String {
    // The template changes whenever the migration list or any migration's
    // source does (an edited migration must not meet a stale template).
    let mut text: String = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect::<Vec<_>>()
        .join(",");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migration/src");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the migration sources")
        .map(|e| e.expect("a migration source").path())
        .collect();
    files.sort();
    for file in files {
        text.push_str(&std::fs::read_to_string(&file).expect("a readable migration source"));
    }
    let digest = text
        .bytes()
        .fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    format!("promotions_tpl_{digest:016x}")
}

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn database_names(db: &DatabaseConnection, like: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT datname FROM pg_database WHERE datname LIKE $1",
        [like.into()],
    ))
    .await
    .expect("list databases")
    .iter()
    .map(|row| row.try_get::<String>("", "datname").expect("datname"))
    .collect()
}

/// Creates a fresh database copied from the migrated template (building the
/// template once per migration list, under an advisory lock shared by all
/// test processes) and returns its URL.
async fn fresh_database() -> String {
    let server = server_url();
    let mut options = ConnectOptions::new(format!("{server}/postgres"));
    options.max_connections(1).sqlx_logging(false);
    let admin = Database::connect(options)
        .await
        .expect("cannot reach PostgreSQL for the tests: set DATABASE_URL (see README) or run scripts/test");
    exec(&admin, &format!("SELECT pg_advisory_lock({LOCK_KEY})")).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    for name in database_names(&admin, &format!("{TEST_DB_PREFIX}%")).await {
        let born: u64 = name[TEST_DB_PREFIX.len()..]
            .split('_')
            .next()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        if now.saturating_sub(born) > STALE_AFTER_SECS {
            exec(&admin, &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
        }
    }
    let template = template_name();
    if database_names(&admin, &template).await.is_empty() {
        let building = format!("{template}_building");
        exec(&admin, &format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)")).await;
        exec(&admin, &format!("CREATE DATABASE \"{building}\"")).await;
        let db = Database::connect(format!("{server}/{building}"))
            .await
            .expect("connect to the template");
        Migrator::up(&db, None).await.expect("migrate the template");
        db.close().await.expect("close the template");
        exec(
            &admin,
            &format!("ALTER DATABASE \"{building}\" RENAME TO \"{template}\""),
        )
        .await;
    }
    let name = format!("{TEST_DB_PREFIX}{now}_{}", Uuid::now_v7().simple());
    exec(&admin, &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"")).await;
    exec(&admin, &format!("SELECT pg_advisory_unlock({LOCK_KEY})")).await;
    admin.close().await.expect("close the admin connection");
    format!("{server}/{name}")
}

/// A running app and a client for it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
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

fn init_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt().with_env_filter("info").try_init();
    }
}

/// Subscriptions one socket may hold in the test apps.
pub const SUBSCRIPTIONS_PER_SOCKET: usize = 20;

/// Spawns the real app on port 0 with a fresh database and Redis prefix.
pub async fn spawn_app() -> TestApp {
    init_logs();
    spawn_app_on(fresh_database().await, format!("test:{}:", Uuid::now_v7().simple())).await
}

impl TestApp {
    /// Another replica of the same service: same database, Redis and prefix.
    pub async fn replica(&self) -> TestApp {
        spawn_app_at(
            self.database_url.clone(),
            self.redis_url.clone(),
            self.redis_key_prefix.clone(),
        )
        .await
    }
}

/// Spawns the app with a fresh database against the Redis at `redis_url`.
pub async fn spawn_app_with_redis(redis_url: &str) -> TestApp {
    init_logs();
    spawn_app_at(fresh_database().await, redis_url.to_owned(), "test:".to_owned()).await
}

async fn spawn_app_on(database_url: String, redis_key_prefix: String) -> TestApp {
    spawn_app_at(database_url, redis_url(), redis_key_prefix).await
}

async fn spawn_app_at(database_url: String, redis_url: String, redis_key_prefix: String) -> TestApp {
    spawn_configured(database_url, redis_url, redis_key_prefix, |_| {}, |_| {}).await
}

/// Spawns the app on an existing database (e.g. one a killed binary used).
pub async fn spawn_app_on_database(database_url: String, adjust: impl FnOnce(&mut Config)) -> TestApp {
    init_logs();
    let prefix = format!("test:{}:", Uuid::now_v7().simple());
    spawn_configured(database_url, redis_url(), prefix, adjust, |_| {}).await
}

/// A fresh database's URL, for tests that run the binary themselves.
pub async fn fresh_database_url() -> String {
    fresh_database().await
}

/// The shared Redis's URL.
pub fn shared_redis_url() -> String {
    redis_url()
}

/// Spawns the app with a fresh database, with `adjust` applied to its settings
/// (e.g. to run the workers, which tests leave off by default).
pub async fn spawn_app_with(redis_url: Option<&str>, adjust: impl FnOnce(&mut Config)) -> TestApp {
    init_logs();
    let prefix = format!("test:{}:", Uuid::now_v7().simple());
    let redis = redis_url.map_or_else(self::redis_url, str::to_owned);
    spawn_configured(fresh_database().await, redis, prefix, adjust, |_| {}).await
}

/// Spawns the app with a fresh database and these HTTP settings.
pub async fn spawn_app_serving(adjust_serve: impl FnOnce(&mut ServeConfig)) -> TestApp {
    init_logs();
    let prefix = format!("test:{}:", Uuid::now_v7().simple());
    spawn_configured(fresh_database().await, redis_url(), prefix, |_| {}, adjust_serve).await
}

/// An HTTP client that sends `Authorization: Bearer <token>` when given one.
pub fn client_with(token: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("a header value"),
        );
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("an HTTP client")
}

/// An HTTP client that sends an admin token.
pub fn admin_client() -> reqwest::Client {
    client_with(Some(&token(Role::Admin)))
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// A Redis key prefix of a test's own.
pub fn fresh_prefix() -> String {
    format!("test:{}:", Uuid::now_v7().simple())
}

/// POSTs a GraphQL document as admin to a binary on `port`, with a
/// `traceparent` when given; the whole JSON response.
pub async fn graphql_at(port: u16, query: &str, variables: Value, traceparent: Option<&str>) -> Value {
    let mut request = admin_client().post(format!("http://127.0.0.1:{port}/graphql"));
    if let Some(tp) = traceparent {
        request = request.header("traceparent", tp);
    }
    post_graphql(request, query, variables).await
}

/// Sends a GraphQL document with `request`; the whole JSON response.
async fn post_graphql(request: reqwest::RequestBuilder, query: &str, variables: Value) -> Value {
    request
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("send the GraphQL request")
        .json()
        .await
        .expect("a JSON response")
}

/// The HS256 key of the test apps' tokens.
pub const JWT_SECRET: &str = "test-secret-of-at-least-16-chars";

/// A token of the test apps for `role`, valid for an hour.
pub fn token(role: Role) -> String {
    promotions::auth::issue(
        JWT_SECRET,
        role,
        &format!("test-{role:?}"),
        std::time::Duration::from_secs(3600),
    )
    .expect("a token")
}

async fn spawn_configured(
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
        jwt_secret: JWT_SECRET.to_owned(),
        jwt_public_key_file: None,
        introspection: true,
        rate_limit_per_second: 0,
        max_ws_connections: 1_000,
        max_subscriptions_per_socket: SUBSCRIPTIONS_PER_SOCKET,
    };
    adjust_serve(&mut serve);
    let app = App::build(config, serve, false)
        .await
        .unwrap_or_else(|e| panic!("the app did not start: {e}"));
    let address = format!("http://{}", app.addr);
    let db = app.state.db.clone();
    let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async move {
        let _ = shutdown_rx.await;
    }));
    TestApp {
        address,
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
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("send GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
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

/// A valid CART promotion input: 10 % off everything; `extra` overrides fields.
pub fn promotion_input(extra: Value) -> Value {
    let mut input = json!({
        "name": "Ten percent",
        "scope": "CART",
        "action": { "percentageOff": { "basisPoints": 1000 } },
    });
    if let (Some(base), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    input
}

/// A Redis server of the test's own (tests that flush or stop Redis must
/// not touch the one other tests share). Killed on drop.
pub struct OwnRedis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    /// Starts `redis-server` without persistence on a free port.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("addr")
            .port();
        let mut redis = OwnRedis { port, child: None };
        redis.restart().await;
        redis
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it again (empty) on the same port.
    pub async fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("these tests need redis-server on PATH (apt-get install redis-server)");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Kills it (data gone, port closed).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// FLUSHALL.
    pub async fn flushall(&self) {
        let client = redis::Client::open(self.url()).expect("url");
        let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
        let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.expect("FLUSHALL");
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How many `usage_counts` rows differ from the counted redemptions of
/// their pool (0: PostgreSQL's counts are its truth).
pub const USAGE_DRIFT_SQL: &str = "SELECT count(*) FROM (
    SELECT scope, owner_id, customer_id, sum(used) AS used FROM usage_counts GROUP BY 1, 2, 3) u
  WHERE u.used <> (
    SELECT count(*) FROM redemption_promotions rp JOIN redemptions r ON r.id = rp.redemption_id
    WHERE r.status = 'REDEEMED'
      AND (CASE WHEN u.scope LIKE 'PROMOTION%' THEN rp.promotion_id ELSE rp.coupon_id END) = u.owner_id
      AND (u.scope NOT LIKE '%CUSTOMER' OR r.customer_id = u.customer_id))";

/// Rows of a raw SQL query on the app's database.
pub async fn rows(app: &TestApp, sql: &str) -> Vec<sea_orm::QueryResult> {
    app.db
        .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
}

/// Polls `check` every 20 ms until it holds; fails the test after `timeout`.
pub async fn until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {timeout:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the real binary (`serve`) with these workers setting and extra
/// environment; killed on drop.
pub struct Binary(std::process::Child);

impl Binary {
    pub async fn start(database_url: &str, prefix: &str, port: u16, workers: bool, env: &[(&str, &str)]) -> Self {
        Self::launch(database_url, prefix, port, workers, env, std::process::Stdio::null()).await
    }

    /// Like [`Binary::start`], with the binary's log lines (stdout) in `log`.
    pub async fn start_logging(
        database_url: &str,
        prefix: &str,
        port: u16,
        env: &[(&str, &str)],
        log: &std::path::Path,
    ) -> Self {
        let file = std::fs::File::create(log).expect("a log file");
        Self::launch(database_url, prefix, port, false, env, file.into()).await
    }

    async fn launch(
        database_url: &str,
        prefix: &str,
        port: u16,
        workers: bool,
        env: &[(&str, &str)],
        stdout: std::process::Stdio,
    ) -> Self {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_promotions"))
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("REDIS_URL", shared_redis_url())
            .env("REDIS_KEY_PREFIX", prefix)
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("RUN_WORKERS", workers.to_string())
            .env("RUST_LOG", "warn")
            .env("JWT_SECRET", JWT_SECRET)
            .envs(env.iter().copied())
            .stdout(stdout)
            .spawn()
            .expect("run the promotions binary");
        let client = reqwest::Client::new();
        until("the binary serves", Duration::from_secs(20), async || {
            client
                .get(format!("http://127.0.0.1:{port}/health/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        Binary(child)
    }

    /// SIGKILL: no shutdown, no cleanup.
    pub fn kill(mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("reap");
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A client WebSocket.
pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/graphql/ws` with `protocol` and completes connection_init as a viewer.
pub async fn connect(app: &TestApp, protocol: &str) -> Socket {
    let mut socket = open_socket(app, protocol).await;
    init_socket(&mut socket, Some(&token(Role::Viewer))).await;
    let ack = next_json(&mut socket, Duration::from_secs(2))
        .await
        .expect("connection_ack");
    assert_eq!(ack["type"], "connection_ack");
    socket
}

/// Opens `/graphql/ws` with `protocol`, before connection_init.
pub async fn open_socket(app: &TestApp, protocol: &str) -> Socket {
    let url = format!("{}/graphql/ws", app.address.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// Sends connection_init with the token (if any) in its payload.
pub async fn init_socket(socket: &mut Socket, token: Option<&str>) {
    let payload = match token {
        Some(t) => json!({ "Authorization": format!("Bearer {t}") }),
        None => json!({}),
    };
    socket
        .send(Message::text(
            json!({ "type": "connection_init", "payload": payload }).to_string(),
        ))
        .await
        .unwrap();
}

/// The next JSON message other than keep-alives, within `within`.
pub async fn next_json(socket: &mut Socket, within: Duration) -> Option<Value> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "ka" {
                    continue;
                }
                return Some(value);
            }
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// A random generator seeded from the environment variable `var` when it
/// holds a number (to replay a failure), else at random; the seed is
/// printed, so that any failing run can be replayed.
pub fn seeded(var: &str) -> (u64, rand::rngs::StdRng) {
    use rand::SeedableRng;
    let seed: u64 = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("{var}={seed}");
    (seed, rand::rngs::StdRng::seed_from_u64(seed))
}
