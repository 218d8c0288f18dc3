//! The store test suite. Every backend runs these same tests.

use modelyard_core::{RepoId, RepoKind};

use crate::{
    CommitOp, ListQuery, NewCommit, NewRepo, RepoFilters, RepoSort, Store, StoreError, TreeEntry,
};

async fn sqlite() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    (dir, Store::connect(&url).await.unwrap())
}

fn entry(path: &str, sha: char) -> TreeEntry {
    TreeEntry {
        path: path.into(),
        sha256: sha.to_string().repeat(64),
        size: 3,
        git_oid: sha.to_string().repeat(40),
        lfs: false,
    }
}

async fn repo(store: &Store, owner: &str, name: &str, private: bool) -> crate::RepoRow {
    let uid = format!("uid-{owner}-{name}");
    store
        .create_repo(&NewRepo {
            uid: uid.clone(),
            kind: RepoKind::Model,
            id: RepoId::new(owner, name).unwrap(),
            private,
            owner: owner.into(),
            initial_commit: format!("{:0>40x}", fxhash(&uid)),
            initial_files: vec![entry(".gitattributes", 'a')],
        })
        .await
        .unwrap()
}

fn commit(repo: &crate::RepoRow, id: char, parent: &str, ops: Vec<CommitOp>) -> NewCommit {
    NewCommit {
        id: id.to_string().repeat(40),
        repo_uid: repo.uid.clone(),
        branch: "main".into(),
        parent: parent.into(),
        author: "alice".into(),
        title: "t".into(),
        message: String::new(),
        ops,
    }
}

pub(crate) async fn suite(store: Store) {
    store.create_user("alice", Some("h"), false).await.unwrap();
    store.create_user("bob", None, false).await.unwrap();
    assert!(matches!(
        store.create_user("alice", None, false).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.count_users().await.unwrap(), 2);

    let r = repo(&store, "alice", "m", false).await;
    let head = store.branch_head(&r.uid, "main").await.unwrap().unwrap();
    assert_eq!(store.tree(&head, "").await.unwrap().len(), 1);

    // A commit applies puts and deletes on top of its parent.
    let c1 = store
        .create_commit(&commit(
            &r,
            'b',
            &head,
            vec![
                CommitOp::Put(entry("a/x.bin", 'c')),
                CommitOp::Put(entry("a/y.bin", 'd')),
                CommitOp::Put(entry("README.md", 'e')),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(store.tree(&c1.id, "a").await.unwrap().len(), 2);
    let c2 = store
        .create_commit(&commit(
            &r,
            'c',
            &c1.id,
            vec![CommitOp::DeleteFolder("a".into())],
        ))
        .await
        .unwrap();
    let paths: Vec<_> = store
        .tree(&c2.id, "")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(paths, [".gitattributes", "README.md"]);
    // The old commit's tree never changes.
    assert_eq!(store.tree(&c1.id, "").await.unwrap().len(), 4);

    // Blobs map to the branch heads that hold them; one only in an old commit maps to none.
    let holders = store
        .blob_holders(&["e".repeat(64), "c".repeat(64)])
        .await
        .unwrap();
    assert_eq!(holders.len(), 1, "{holders:?}");
    let h = &holders[0];
    assert_eq!(
        (
            h.sha256.as_str(),
            h.path.as_str(),
            h.branch.as_str(),
            h.commit.as_str()
        ),
        ("e".repeat(64).as_str(), "README.md", "main", c2.id.as_str())
    );
    assert_eq!(
        (h.namespace.as_str(), h.name.as_str(), h.private),
        ("alice", "m", false)
    );
    assert!(store.blob_holders(&[]).await.unwrap().is_empty());

    // A stale parent loses and leaves nothing behind.
    let stale = store
        .create_commit(&commit(
            &r,
            'd',
            &c1.id,
            vec![CommitOp::Put(entry("z", 'f'))],
        ))
        .await;
    assert!(matches!(stale, Err(StoreError::Stale { .. })), "{stale:?}");
    assert!(store
        .commit(&r.uid, &"d".repeat(40))
        .await
        .unwrap()
        .is_none());

    // File/folder clashes and missing deletions are refused.
    let clash = store
        .create_commit(&commit(
            &r,
            'e',
            &c2.id,
            vec![CommitOp::Put(entry("README.md/x", 'f'))],
        ))
        .await;
    assert!(matches!(clash, Err(StoreError::Invalid(_))), "{clash:?}");
    let missing = store
        .create_commit(&commit(
            &r,
            'e',
            &c2.id,
            vec![CommitOp::DeleteFile("nope".into())],
        ))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );

    // History and refs.
    let hist = store.history(&r.uid, &c2.id, 0, 10).await.unwrap();
    assert_eq!(
        hist.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [c2.id.as_str(), c1.id.as_str(), head.as_str()]
    );
    assert_eq!(
        store.history(&r.uid, &c2.id, 1, 1).await.unwrap()[0].id,
        c1.id
    );
    store.create_ref(&r.uid, "tag", "v1", &c1.id).await.unwrap();
    assert!(matches!(
        store.create_ref(&r.uid, "branch", "v1", &c1.id).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.resolve_revision(&r.uid, "v1").await.unwrap(),
        Some(c1.id.clone())
    );
    assert_eq!(
        store.resolve_revision(&r.uid, &c1.id).await.unwrap(),
        Some(c1.id.clone())
    );
    assert_eq!(store.resolve_revision(&r.uid, "nope").await.unwrap(), None);
    assert!(store.delete_ref(&r.uid, "tag", "v1").await.unwrap());

    // Listing: visibility, search, tags, sorting and cursors.
    repo(&store, "bob", "secret", true).await;
    for i in 0..5 {
        repo(&store, "bob", &format!("pub{i}"), false).await;
    }
    let card = modelyard_core::parse_card("---\ntags: [vision]\nlicense: mit\n---\n").unwrap();
    store.set_card(&r.uid, Ok(&card)).await.unwrap();
    let q = |viewer: Option<&str>| ListQuery {
        filters: Default::default(),
        kind: RepoKind::Model,
        viewer: viewer.map(str::to_owned),
        viewer_is_admin: false,
        search: None,
        author: None,
        tags: vec![],
        sort: RepoSort::Recent,
        limit: 100,
        after: None,
    };
    assert_eq!(store.list_repos(&q(None)).await.unwrap().repos.len(), 6);
    assert_eq!(
        store.list_repos(&q(Some("bob"))).await.unwrap().repos.len(),
        7
    );
    assert_eq!(
        store
            .list_repos(&q(Some("alice")))
            .await
            .unwrap()
            .repos
            .len(),
        6
    );
    let tagged = store
        .list_repos(&ListQuery {
            filters: Default::default(),
            tags: vec!["vision".into()],
            ..q(None)
        })
        .await
        .unwrap();
    assert_eq!(tagged.repos.len(), 1);
    assert_eq!(tagged.repos[0].license.as_deref(), Some("mit"));

    // The card's task, library and license, and the size of a model file on main.
    let pub1 = store
        .repo(RepoKind::Model, &RepoId::new("bob", "pub1").unwrap())
        .await
        .unwrap()
        .unwrap();
    let card = modelyard_core::parse_card(
        "---\npipeline_tag: image-classification\nlibrary_name: ONNX\nlicense: MIT\n---\n",
    )
    .unwrap();
    store.set_card(&pub1.uid, Ok(&card)).await.unwrap();
    let head = store.branch_head(&pub1.uid, "main").await.unwrap().unwrap();
    store
        .create_commit(&commit(
            &pub1,
            'f',
            &head,
            vec![CommitOp::Put(entry("model.onnx", '9'))],
        ))
        .await
        .unwrap();
    store
        .put_analysis(&crate::NewAnalysis {
            sha256: &"9".repeat(64),
            status: crate::AnalysisStatus::Ok,
            format: Some("onnx"),
            features: None,
            error: None,
            analyzer_version: 2,
            parameters: Some(25_000_000),
        })
        .await
        .unwrap();
    let matching = |filters: RepoFilters| {
        let store = &store;
        let q = ListQuery { filters, ..q(None) };
        async move {
            let mut ids: Vec<String> = store
                .list_repos(&q)
                .await
                .unwrap()
                .repos
                .iter()
                .map(|r| r.id.to_string())
                .collect();
            ids.sort();
            ids
        }
    };
    let f = RepoFilters::default;
    let task = Some("image-classification".to_owned());
    assert_eq!(matching(RepoFilters { task, ..f() }).await, ["bob/pub1"]);
    let library = Some("onnx".to_owned());
    assert_eq!(matching(RepoFilters { library, ..f() }).await, ["bob/pub1"]);
    let license = Some("mit".to_owned());
    assert_eq!(
        matching(RepoFilters { license, ..f() }).await,
        ["alice/m", "bob/pub1"]
    );
    let sized = |lo: Option<i64>, hi: Option<i64>| RepoFilters {
        min_parameters: lo,
        max_parameters: hi,
        ..f()
    };
    assert_eq!(
        matching(sized(Some(10_000_000), Some(100_000_000))).await,
        ["bob/pub1"]
    );
    assert_eq!(matching(sized(None, Some(30_000_000))).await, ["bob/pub1"]);
    assert!(matching(sized(Some(100_000_000), None)).await.is_empty());
    assert!(matching(sized(None, Some(1_000_000))).await.is_empty());
    let all = store.list_repos(&q(None)).await.unwrap().repos;
    let uids: Vec<&str> = all.iter().map(|r| r.uid.as_str()).collect();
    let sizes = store.main_parameters(&uids).await.unwrap();
    assert_eq!(
        sizes.len(),
        1,
        "only bob/pub1 has an analysed model: {sizes:?}"
    );
    assert_eq!(sizes[&pub1.uid], 25_000_000);
    assert!(store.main_parameters(&[]).await.unwrap().is_empty());
    let found = store
        .list_repos(&ListQuery {
            filters: Default::default(),
            search: Some("PUB".into()),
            ..q(None)
        })
        .await
        .unwrap();
    assert_eq!(found.repos.len(), 5);
    let literal = store
        .list_repos(&ListQuery {
            filters: Default::default(),
            search: Some("%".into()),
            ..q(None)
        })
        .await
        .unwrap();
    assert_eq!(literal.repos.len(), 0);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_repos(&ListQuery {
                filters: Default::default(),
                limit: 2,
                after: after.clone(),
                author: Some("bob".into()),
                ..q(None)
            })
            .await
            .unwrap();
        seen.extend(page.repos.into_iter().map(|r| r.id.to_string()));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        ["bob/pub0", "bob/pub1", "bob/pub2", "bob/pub3", "bob/pub4"]
    );
    store.count_download(&r.uid).await.unwrap();
    let top = store
        .list_repos(&ListQuery {
            filters: Default::default(),
            sort: RepoSort::Downloads,
            limit: 1,
            ..q(None)
        })
        .await
        .unwrap();
    assert_eq!(top.repos[0].id.to_string(), "alice/m");

    // Rename and delete.
    store
        .rename_repo(&r.uid, &RepoId::new("alice", "m2").unwrap())
        .await
        .unwrap();
    assert!(store
        .repo(RepoKind::Model, &RepoId::new("alice", "m").unwrap())
        .await
        .unwrap()
        .is_none());
    assert!(store
        .repo(RepoKind::Model, &RepoId::new("alice", "m2").unwrap())
        .await
        .unwrap()
        .is_some());
    store.delete_repo(&r.uid).await.unwrap();
    assert!(store.repo_by_uid(&r.uid).await.unwrap().is_none());
    assert!(store.commit(&r.uid, &c1.id).await.unwrap().is_none());

    // Tokens.
    store
        .create_token("t1", "alice", "hash1", "write", "cli", None)
        .await
        .unwrap();
    let (tok, user) = store.token_by_hash("hash1").await.unwrap().unwrap();
    assert_eq!((tok.scope.as_str(), user.name.as_str()), ("write", "alice"));
    assert!(store.delete_token("alice", "t1").await.unwrap());
    assert!(store.token_by_hash("hash1").await.unwrap().is_none());
}

#[tokio::test]
async fn sqlite_passes_the_suite() {
    let (_dir, store) = sqlite().await;
    suite(store).await;
}

#[tokio::test]
async fn postgres_passes_the_suite() {
    let Some(server) = crate::testing::postgres_url("postgres_passes_the_suite") else {
        return;
    };
    let db = crate::testing::TestDatabase::create(&server).await;
    suite(Store::connect(&db.url).await.unwrap()).await;
    db.drop_database().await;
}

#[tokio::test]
async fn concurrent_commits_one_wins() {
    let (_dir, store) = sqlite().await;
    concurrent_commits(store).await;
}

#[tokio::test]
async fn postgres_concurrent_commits_one_wins() {
    let Some(server) = crate::testing::postgres_url("postgres_concurrent_commits_one_wins") else {
        return;
    };
    let db = crate::testing::TestDatabase::create(&server).await;
    concurrent_commits(Store::connect(&db.url).await.unwrap()).await;
    db.drop_database().await;
}

/// Exactly one replica leads on PostgreSQL; the lock passes on when the leader goes.
#[tokio::test]
async fn postgres_leadership_is_exclusive() {
    let Some(server) = crate::testing::postgres_url("postgres_leadership_is_exclusive") else {
        return;
    };
    let db = crate::testing::TestDatabase::create(&server).await;
    let one = Store::connect(&db.url).await.unwrap();
    let two = Store::connect(&db.url).await.unwrap();
    let lead = one
        .try_lead("scheduler")
        .await
        .unwrap()
        .expect("the first leads");
    assert!(two.try_lead("scheduler").await.unwrap().is_none());
    assert!(two.try_lead("other-role").await.unwrap().is_some());
    drop(lead);
    let mut again = None;
    for _ in 0..50 {
        again = two.try_lead("scheduler").await.unwrap();
        if again.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "leadership passes on");
    drop((again, one, two));
    db.drop_database().await;
}

/// A SQLite database has one process, which always leads.
#[tokio::test]
async fn sqlite_always_leads() {
    let (_dir, store) = sqlite().await;
    let _a = store.try_lead("scheduler").await.unwrap().unwrap();
    assert!(store.try_lead("scheduler").await.unwrap().is_some());
}

/// Every SQLite migration has a PostgreSQL twin of the same name, and no twin is orphaned.
#[test]
fn every_migration_has_a_postgres_twin() {
    let names = |dir: &str| {
        let mut v: Vec<String> =
            std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sql"))
                .collect();
        v.sort();
        v
    };
    assert_eq!(
        names("migrations/sqlite"),
        names("migrations/postgres"),
        "write migrations/postgres/NAME.sql for every migrations/sqlite/NAME.sql"
    );
}

/// Four commits race from the same parent: exactly one lands, the others are stale.
async fn concurrent_commits(store: Store) {
    store.create_user("alice", None, false).await.unwrap();
    let r = repo(&store, "alice", "race", false).await;
    let head = store.branch_head(&r.uid, "main").await.unwrap().unwrap();
    let mut tasks = Vec::new();
    for (i, id) in ['1', '2', '3', '4'].into_iter().enumerate() {
        let store = store.clone();
        let c = commit(
            &r,
            id,
            &head,
            vec![CommitOp::Put(entry(&format!("f{i}"), 'f'))],
        );
        tasks.push(tokio::spawn(async move { store.create_commit(&c).await }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::Stale { .. }) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(wins, 1);
    let new_head = store.branch_head(&r.uid, "main").await.unwrap().unwrap();
    assert_eq!(store.tree(&new_head, "").await.unwrap().len(), 2);
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}
