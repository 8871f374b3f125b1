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
        let mut redis = Self::unstarted();
        redis.restart().await;
        redis
    }

    /// A free port with nothing on it yet: [`OwnRedis::restart`] starts it.
    pub fn unstarted() -> Self {
        OwnRedis {
            port: free_port(),
            child: None,
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it again (empty) on the same port.
    pub async fn restart(&mut self) {
        let child = redis_server(self.port)
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

    /// SIGSTOP (`pause: true`) or SIGCONT: a Redis that stops answering
    /// without closing its connections, as a hung host does.
    pub fn pause(&self, pause: bool) {
        let pid = self.child.as_ref().expect("running").id();
        let signal = if pause { "-STOP" } else { "-CONT" };
        let done = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill");
        assert!(done.success());
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
        let client = client_with(None);
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

/// A Redis Cluster of the test's own: 3 masters and 3 replicas on free
/// loopback ports (their bus ports, +10000, free too), no persistence,
/// node timeout 1 s so a failover takes a few seconds. Killed on drop.
pub struct OwnCluster {
    pub ports: Vec<u16>,
    children: Vec<Option<std::process::Child>>,
    dir: std::path::PathBuf,
}

impl OwnCluster {
    /// Starts the six nodes, creates the cluster, waits until it is ok.
    pub async fn start() -> Self {
        let ports = cluster_ports(6);
        let dir = std::env::temp_dir().join(format!("promotions-cluster-{}", Uuid::now_v7().simple()));
        let children = ports.iter().map(|port| Some(spawn_cluster_node(*port, &dir))).collect();
        for port in &ports {
            until("a cluster node listens", Duration::from_secs(5), async || {
                tokio::net::TcpStream::connect(("127.0.0.1", *port)).await.is_ok()
            })
            .await;
        }
        let created = std::process::Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli");
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stdout));
        let cluster = OwnCluster { ports, children, dir };
        cluster.wait_until_ok(0).await;
        cluster
    }

    /// `redis://127.0.0.1:<first port>` (the service discovers the rest).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.ports[0])
    }

    /// `CLUSTER NODES` as node `i` sees it.
    pub async fn nodes(&self, i: usize) -> String {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.ports[i])).expect("url");
        let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
        redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut conn)
            .await
            .expect("CLUSTER NODES")
    }

    /// The index of the master serving `key` now, as node `asked` sees it.
    pub async fn master_of(&self, key: &str, asked: usize) -> usize {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.ports[asked])).expect("url");
        let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("KEYSLOT");
        for line in self.nodes(asked).await.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let serves = fields[8..].iter().any(|range| match range.split_once('-') {
                Some((a, b)) => a.parse::<u16>().is_ok_and(|a| a <= slot) && b.parse::<u16>().is_ok_and(|b| slot <= b),
                None => range.parse::<u16>().is_ok_and(|s| s == slot),
            });
            if serves {
                let port: u16 = fields[1]
                    .split(['@', ':'])
                    .nth(1)
                    .and_then(|p| p.parse().ok())
                    .expect("a port");
                return self.ports.iter().position(|p| *p == port).expect("one of ours");
            }
        }
        panic!("no master serves slot {slot}");
    }

    /// Whether master `i` has a replica in sync with it (one that can take over).
    pub async fn has_replica(&self, i: usize, asked: usize) -> bool {
        let nodes = self.nodes(asked).await;
        let line_of = |port: u16| {
            nodes.lines().find(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|a| a.starts_with(&format!("127.0.0.1:{port}@")))
            })
        };
        let Some(id) = line_of(self.ports[i]).and_then(|l| l.split_whitespace().next()) else {
            return false;
        };
        for (n, port) in self.ports.iter().enumerate() {
            let Some(line) = line_of(*port) else { continue };
            let f: Vec<&str> = line.split_whitespace().collect();
            if n == i || !f[2].contains("slave") || f[2].contains("fail") || f[3] != id {
                continue;
            }
            let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) else {
                continue;
            };
            let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                continue;
            };
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            if info.contains("master_link_status:up") {
                return true;
            }
        }
        false
    }

    /// Starts node `i` again (empty, with its cluster config): it rejoins
    /// the cluster, as a replica when its slots were taken over.
    /// A node still running is left alone.
    pub async fn restart(&mut self, i: usize) {
        if self.children[i].is_some() {
            return;
        }
        self.children[i] = Some(spawn_cluster_node(self.ports[i], &self.dir));
        let port = self.ports[i];
        until("a restarted node listens", Duration::from_secs(5), async || {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
    }

    /// SIGKILL of node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until node `asked` reports the cluster ok with every slot served by a live master.
    pub async fn wait_until_ok(&self, asked: usize) {
        let port = self.ports[asked];
        until("the cluster is ok", Duration::from_secs(30), async || {
            let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) else {
                return false;
            };
            let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                return false;
            };
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
        })
        .await;
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `redis-server` on `port` of loopback, without persistence, quiet.
fn redis_server(port: u16) -> std::process::Command {
    let mut command = std::process::Command::new("redis-server");
    command
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null());
    command
}

/// One cluster node on `port`, its files under `dir/<port>`.
fn spawn_cluster_node(port: u16, dir: &std::path::Path) -> std::process::Child {
    let node_dir = dir.join(port.to_string());
    std::fs::create_dir_all(&node_dir).expect("a node directory");
    redis_server(port)
        .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
        .arg("--dir")
        .arg(&node_dir)
        .spawn()
        .expect("these tests need redis-server on PATH (apt-get install redis-server)")
}

/// `n` free ports whose cluster bus ports (+10000) are free too.
fn cluster_ports(n: usize) -> Vec<u16> {
    let mut ports = Vec::new();
    while ports.len() < n {
        let port = free_port();
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if port < 55_000 && !ports.contains(&port) && free(port + 10_000) {
            ports.push(port);
        }
    }
    ports
}
