//! A one-time answer id is accepted once across every node sharing a database: each "node"
//! here is its own connection pool, as separate Gatehouse processes would have.

use gatehouse_core::store::{Db, Replays};

async fn two_nodes_refuse_the_second_use(url: &str) {
    let node_a = Replays::new(Db::connect(url).await.expect("node A connects"));
    let node_b = Replays::new(Db::connect(url).await.expect("node B connects"));
    let expires = chrono::Utc::now().timestamp() + 300;
    let id = format!("_assertion-{}", uuid::Uuid::new_v4());

    assert!(node_a.claim("https://idp.test", &id, expires).await.unwrap());
    assert!(!node_b.claim("https://idp.test", &id, expires).await.unwrap(), "replay at B");
    assert!(!node_a.claim("https://idp.test", &id, expires).await.unwrap(), "replay at A");
    // The same id from another issuer is another answer.
    assert!(node_b.claim("https://other-idp.test", &id, expires).await.unwrap());
}

async fn racing_nodes_accept_exactly_one(url: &str) {
    let node_a = Replays::new(Db::connect(url).await.expect("node A connects"));
    let node_b = Replays::new(Db::connect(url).await.expect("node B connects"));
    let expires = chrono::Utc::now().timestamp() + 300;
    for _ in 0..20 {
        let id = format!("_race-{}", uuid::Uuid::new_v4());
        let (a, b) = tokio::join!(
            node_a.claim("https://idp.test", &id, expires),
            node_b.claim("https://idp.test", &id, expires)
        );
        assert!(a.unwrap() ^ b.unwrap(), "exactly one node accepts {id}");
    }
}

#[tokio::test]
async fn sqlite_nodes_share_replay_records() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gatehouse.sqlite").display());
    two_nodes_refuse_the_second_use(&url).await;
    racing_nodes_accept_exactly_one(&url).await;
}

#[tokio::test]
async fn postgres_nodes_share_replay_records() {
    let admin = std::env::var("GATEHOUSE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let name = format!("gh_replay_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (start it: pg_ctlcluster 15 main start)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    two_nodes_refuse_the_second_use(&url).await;
    racing_nodes_accept_exactly_one(&url).await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
}
