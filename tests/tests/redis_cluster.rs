//! The Rust Redis store on a real 3-master Redis Cluster started by the
//! test on 127.0.0.1 (`redis-server --cluster-enabled yes` × 3, then
//! `redis-cli --cluster create`): every request's keys share one slot, the
//! keys spread over all three masters, and the answers are the table's —
//! exactly once under 8 concurrent tasks.

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stormguard_redis::testing::RedisServer;
use stormguard_redis::{keys, Begin, RedisStore, StoreConfig};

fn cluster() -> Vec<RedisServer> {
    let nodes: Vec<RedisServer> = (0..3)
        .map(|_| {
            RedisServer::start_with(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            ])
            .expect("redis-server with --cluster-enabled")
        })
        .collect();
    let mut create = Command::new("redis-cli");
    create.args(["--cluster", "create"]);
    for node in &nodes {
        create.arg(format!("127.0.0.1:{}", node.port()));
    }
    let status = create
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli");
    assert!(status.status.success(), "{status:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !nodes.iter().all(|n| {
        n.command(&["CLUSTER", "INFO"])
            .is_ok_and(|info| info.contains("cluster_state:ok"))
    }) {
        assert!(Instant::now() < deadline, "the cluster did not converge");
        std::thread::sleep(Duration::from_millis(100));
    }
    nodes
}

#[test]
fn the_store_on_a_three_master_cluster() {
    let nodes = cluster();
    let client =
        redis::cluster::ClusterClient::new(nodes.iter().map(|n| n.url()).collect::<Vec<_>>())
            .expect("cluster client");
    let conn = smol::block_on(client.get_async_connection()).expect("cluster connection");
    let config = StoreConfig::builder()
        .prefix("cluster:")
        .build()
        .expect("valid config");
    let store = RedisStore::with_connection(conn, config);

    // Each request's entry and fence are in one slot, as the cluster says;
    // the keys spread over every master.
    let mut owners = HashSet::new();
    for i in 0..300 {
        let entry = keys::entry_key("cluster:", &format!("key-{i}")).unwrap();
        let slot = keys::hash_slot(&entry);
        let said = nodes[0].command(&["CLUSTER", "KEYSLOT", &entry]).unwrap();
        assert_eq!(said, slot.to_string());
        assert_eq!(slot, keys::hash_slot(&keys::fence_key(&entry)));
        for (n, node) in nodes.iter().enumerate() {
            if node
                .command(&["CLUSTER", "NODES"])
                .is_ok_and(|nodes| owns(&nodes, slot))
            {
                owners.insert(n);
            }
        }
    }
    assert_eq!(owners.len(), 3, "keys on every master");

    // Eight tasks race for 2000 keys: one execution each.
    const KEYS: u64 = 2_000;
    let executions: Arc<Vec<AtomicU64>> = Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let ex = smol::Executor::new();
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let (store, executions) = (store.clone(), executions.clone());
            ex.spawn(async move {
                for k in 0..KEYS {
                    let key = format!("race-{}", (k + task * 250) % KEYS);
                    loop {
                        match store.begin(&key, b"fp").await.expect("the cluster answers") {
                            Begin::Execute(ticket) => {
                                let i: u64 = key[5..].parse().unwrap();
                                executions[i as usize].fetch_add(1, Ordering::SeqCst);
                                store.complete(&ticket, key.as_bytes()).await.unwrap();
                                break;
                            }
                            Begin::Replay(response) => {
                                assert_eq!(response, key.as_bytes());
                                break;
                            }
                            Begin::InProgress => {
                                async_io::Timer::after(Duration::from_millis(1)).await;
                            }
                            other => panic!("{other:?}"),
                        }
                    }
                }
            })
        })
        .collect();
    smol::block_on(ex.run(async {
        for task in tasks {
            task.await;
        }
    }));
    assert!(executions.iter().all(|n| n.load(Ordering::SeqCst) == 1));
}

/// Whether the `CLUSTER NODES` line marked `myself` serves `slot`.
fn owns(nodes: &str, slot: u16) -> bool {
    nodes
        .lines()
        .filter(|line| line.contains("myself"))
        .flat_map(|line| line.split_whitespace().skip(8))
        .any(|range| match range.split_once('-') {
            Some((from, to)) => {
                from.parse::<u16>().is_ok_and(|f| f <= slot)
                    && to.parse::<u16>().is_ok_and(|t| slot <= t)
            }
            None => range.parse::<u16>().is_ok_and(|s| s == slot),
        })
}
