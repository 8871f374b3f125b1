//! Processes a test runs itself: the real binary and a Redis of its own,
//! killed on drop, and free ports for them.

use super::*;

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
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
