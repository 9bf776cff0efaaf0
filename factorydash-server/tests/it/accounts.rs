//! Accounts end to end, over HTTP against a real `serve` (SQLite and PostgreSQL): the
//! first admin made by `factorydash user add`, sign-in with the form's token, sessions
//! ended by logout and by disabling, personal tokens, groups that scope devices on every
//! route and on `/ws`, rate limits, the audit log, and the auth proxy accepted from its
//! address only.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::support::{postgres_url, start_logged, Browser, FreshDb, Running};

pub const ADA_PASSWORD: &str = "spindle warm-up at six";
pub const CAROL_PASSWORD: &str = "coolant check at noon";

/// `factorydash user ARGS` on `store` (its `--data-dir` or `--database-url`), the
/// password on standard input.
pub async fn user_cli(store: &[&str], args: &[&str], password: &str) -> (bool, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_factorydash"))
        .arg("user")
        .args(args)
        .args(store)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{password}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Signs in `ada` (an admin made beforehand with [`user_cli`]), makes `vera` a viewer of
/// every device, signs her in: both clients, from 127.0.`net`.1 and .2.
pub async fn admin_and_viewer(base: &str, net: u8) -> (Client, Client) {
    let mut ada = Client::new(base, Some(format!("127.0.{net}.1").parse().unwrap()));
    assert_eq!(ada.sign_in("ada", ADA_PASSWORD).await, 303);
    let (status, body) = ada
        .json(
            reqwest::Method::POST,
            "/api/users",
            Some(json!({ "name": "vera", "password": CAROL_PASSWORD })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let group = json!({ "name": "viewers", "role": "viewer", "scope": ["*"], "members": ["vera"] });
    let (status, body) = ada
        .json(reqwest::Method::POST, "/api/groups", Some(group))
        .await;
    assert_eq!(status, 200, "{body}");
    let mut vera = Client::new(base, Some(format!("127.0.{net}.2").parse().unwrap()));
    assert_eq!(vera.sign_in("vera", CAROL_PASSWORD).await, 303);
    (ada, vera)
}

/// An HTTP client that keeps cookies as one browser would, from one local address.
pub struct Client {
    base: String,
    http: reqwest::Client,
    cookies: std::collections::BTreeMap<String, String>,
}

impl Client {
    pub fn new(base: &str, from: Option<IpAddr>) -> Self {
        let mut http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(a) = from {
            http = http.local_address(a);
        }
        Client {
            base: base.to_owned(),
            http: http.build().unwrap(),
            cookies: Default::default(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, r: &reqwest::Response) -> Vec<String> {
        let mut set = Vec::new();
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap().to_owned();
            let (pair, _) = v.split_once(';').unwrap_or((&v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            if val.is_empty() || v.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
            set.push(v);
        }
        set
    }

    /// GET `path` as a page (Accept: text/html): status, body, `Location`.
    pub async fn page(&mut self, path: &str) -> (u16, String, Option<String>) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("accept", "text/html")
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&r);
        let location = r
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (r.status().as_u16(), r.text().await.unwrap(), location)
    }

    pub async fn get(&mut self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&r);
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// POSTs a form from this server's own page (`Sec-Fetch-Site: same-origin`).
    pub async fn form(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (u16, String, Vec<String>) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .header("cookie", self.cookie_header())
            .body(body)
            .send()
            .await
            .unwrap();
        let set = self.keep(&r);
        (r.status().as_u16(), r.text().await.unwrap(), set)
    }

    /// POSTs or DELETEs JSON from this server's own page.
    pub async fn json(
        &mut self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("sec-fetch-site", "same-origin")
            .header("cookie", self.cookie_header());
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        self.keep(&r);
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// The form token of the sign-in page.
    async fn login_token(&mut self) -> String {
        let (status, page, _) = self.page("/login?next=%2Fdevice%3Fname%3Dx").await;
        assert_eq!(status, 200, "{page}");
        let at = page.find("name=\"csrf\" value=\"").expect("a form token") + 19;
        page[at..at + 64].to_owned()
    }

    /// Signs in: the status of the form's answer.
    pub async fn sign_in(&mut self, user: &str, password: &str) -> u16 {
        let csrf = self.login_token().await;
        let (status, _, _) = self
            .form(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("user", user),
                    ("password", password),
                    ("next", "/"),
                ],
            )
            .await;
        status
    }
}

/// The device names `body` mentions among `names`.
fn mentioned<'n>(body: &str, names: &'n [String]) -> BTreeSet<&'n str> {
    names
        .iter()
        .filter(|n| body.contains(n.as_str()))
        .map(String::as_str)
        .collect()
}

/// The whole story, on the store `store` names (`--data-dir DIR` or `--database-url URL`).
async fn accounts_on(store: &[&str]) {
    // The first admin, before anyone can sign in.
    let (ok, out) = user_cli(store, &["add", "--admin", "ada"], "password123").await;
    assert!(
        !ok && out.contains("common"),
        "a common password is refused: {out}"
    );
    let (ok, out) = user_cli(store, &["add", "--admin", "ada"], ADA_PASSWORD).await;
    assert!(ok && out.contains("admins"), "{out}");
    let (ok, out) = user_cli(store, &["add", "ada"], CAROL_PASSWORD).await;
    assert!(
        !ok && out.contains("exists"),
        "adding a user again is refused: {out}"
    );

    let mut args = vec![
        "serve",
        "--demo",
        "--speed",
        "20",
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(store);
    let (fd, _log): (Running, _) = start_logged(&args, &[]).await;
    let base = fd.base.clone();

    // Nobody: a page sends a browser to sign in; the API answers 401.
    let mut nobody = Client::new(&base, None);
    let (status, _, location) = nobody.page("/device?name=x").await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some("/login?next=%2Fdevice%3Fname%3Dx")
    );
    assert_eq!(nobody.get("/api/devices").await.0, 401);
    assert_eq!(nobody.get("/healthz").await.0, 200);

    // The sign-in form needs its token; a wrong password is refused as an unknown user is.
    let mut ada = Client::new(&base, Some("127.0.0.2".parse().unwrap()));
    let csrf = ada.login_token().await;
    let (status, _, _) = ada
        .form(
            "/login",
            &[("csrf", "0"), ("user", "ada"), ("password", ADA_PASSWORD)],
        )
        .await;
    assert_eq!(status, 403, "a form without its token");
    let (status, page, set) = ada
        .form(
            "/login",
            &[
                ("csrf", &csrf),
                ("user", "ada"),
                ("password", "wrong password!"),
            ],
        )
        .await;
    assert_eq!(status, 401);
    assert!(page.contains("Wrong name or password"));
    assert!(set.iter().all(|c| !c.starts_with("factorydash_session")));
    let (status, unknown, _) = ada
        .form(
            "/login",
            &[
                ("csrf", &csrf),
                ("user", "nobody"),
                ("password", "wrong password!"),
            ],
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        unknown.replace("nobody", "ada"),
        page,
        "an unknown user gets the same page"
    );
    // A session id planted before sign-in is not kept: a new one is made.
    ada.cookies
        .insert("factorydash_session".into(), "a".repeat(64));
    let (status, _, set) = ada
        .form(
            "/login",
            &[
                ("csrf", &csrf),
                ("user", "ada"),
                ("password", ADA_PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let session = set
        .iter()
        .find(|c| c.starts_with("factorydash_session="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    assert!(!session.contains(&"a".repeat(64)));
    let (status, devices) = ada.get("/api/devices").await;
    assert_eq!(status, 200);
    let devices: Value = serde_json::from_str(&devices).unwrap();
    let names: Vec<String> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.len() >= 3, "{names:?}");
    let mine = names[0].clone();
    let others: Vec<String> = names[1..].to_vec();

    // A user and a group scoped to one device, made by the admin.
    let (status, body) = ada
        .json(
            reqwest::Method::POST,
            "/api/users",
            Some(json!({ "name": "carol", "displayName": "Carol", "password": CAROL_PASSWORD })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = ada
        .json(
            reqwest::Method::POST,
            "/api/groups",
            Some(json!({ "name": "one-machine", "role": "viewer", "scope": [format!("device:{mine}")], "members": ["carol"] })),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Carol sees her machine, and nothing of the others, on every route.
    let mut carol = Client::new(&base, Some("127.0.0.3".parse().unwrap()));
    assert_eq!(carol.sign_in("carol", CAROL_PASSWORD).await, 303);
    let (status, own) = carol.get("/api/devices").await;
    assert_eq!(status, 200);
    assert_eq!(
        mentioned(&own, &names),
        BTreeSet::from([mine.as_str()]),
        "{own}"
    );
    let other = &others[0];
    let some_item = {
        let d: Value = serde_json::from_str(&devices.to_string()).unwrap();
        d.as_array().unwrap()[1]["device"]["dataItems"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for path in [
        "/".to_owned(),
        "/?wall=1".to_owned(),
        "/agents".to_owned(),
        "/api/latest?limit=1000".to_owned(),
        format!("/api/latest?limit=1000&device={other}"),
        "/api/latest?limit=1000&at=2016-01-01T00:00:00Z".to_owned(),
        "/api/alarms?from=2000-01-01T00:00:00Z".to_owned(),
        "/api/gaps".to_owned(),
        "/api/agents".to_owned(),
        format!("/device?name={mine}"),
    ] {
        let (status, body, _) = carol.page(&path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            mentioned(&body, &others).is_empty(),
            "{path} shows another group's device: {:?}",
            mentioned(&body, &others)
        );
    }
    for path in [
        format!("/device?name={other}"),
        format!("/api/series?device={other}&dataItemId={some_item}"),
        format!("/api/utilization?device={other}"),
        format!("/api/export?device={other}&dataItemId={some_item}"),
        format!("/api/alarms?device={other}"),
        format!("/api/stops?device={other}"),
        format!("/stops?device={other}"),
    ] {
        let (status, body, _) = carol.page(&path).await;
        assert_eq!(status, 404, "{path} must not exist for carol: {body}");
    }
    for path in [
        "/metrics",
        "/api/users",
        "/api/groups",
        "/api/audit",
        "/admin",
    ] {
        assert_eq!(carol.get(path).await.0, 403, "{path}");
    }
    let (status, _) = carol
        .json(
            reqwest::Method::POST,
            "/api/agents",
            Some(json!({ "url": "http://127.0.0.1:7/x" })),
        )
        .await;
    assert_eq!(status, 403);

    // The live stream: nothing about another group's device, over 3 s of a replay at 20×.
    let ws_url = format!("{}/ws", base.replace("http://", "ws://"));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            ws_url.as_str(),
        )
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", carol.cookie_header().parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let until = Instant::now() + Duration::from_secs(3);
    let mut latest = 0;
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(until.into(), socket.next()).await {
        let text = m.to_text().unwrap_or("").to_owned();
        assert!(
            mentioned(&text, &others).is_empty(),
            "/ws sent another group's device: {text}"
        );
        if text.contains("\"type\":\"latest\"") {
            assert!(text.contains(&mine), "{text}");
            latest += 1;
        }
    }
    assert!(latest > 0, "carol's device is sent live");
    drop(socket);

    // A personal token acts as carol, scoped; revoked, it is refused.
    let (status, made) = carol
        .json(
            reqwest::Method::POST,
            "/api/tokens",
            Some(json!({ "name": "mes-export", "days": 7 })),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let secret = made["token"].as_str().unwrap().to_owned();
    let bearer = |path: &str| {
        reqwest::Client::new()
            .get(format!("{base}{path}"))
            .bearer_auth(&secret)
            .send()
    };
    let r = bearer("/api/devices").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        mentioned(&r.text().await.unwrap(), &names),
        BTreeSet::from([mine.as_str()])
    );
    // A token cannot make tokens (one stolen would outlive its revocation).
    let minted = reqwest::Client::new()
        .post(format!("{base}/api/tokens"))
        .bearer_auth(&secret)
        .json(&json!({ "name": "more", "days": 365 }))
        .send()
        .await
        .unwrap();
    assert_eq!(minted.status(), 403);
    let (status, listed) = carol.json(reqwest::Method::GET, "/api/tokens", None).await;
    assert_eq!(status, 200);
    assert!(
        !listed.to_string().contains(&secret),
        "a token is shown once only"
    );
    let id = made["id"].as_str().unwrap();
    let (status, _) = carol
        .json(
            reqwest::Method::DELETE,
            &format!("/api/tokens?id={id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(bearer("/api/devices").await.unwrap().status(), 401);

    // Logout ends the session; a disabled user is out at once, everywhere.
    let mut carol2 = Client::new(&base, Some("127.0.0.4".parse().unwrap()));
    assert_eq!(carol2.sign_in("carol", CAROL_PASSWORD).await, 303);
    let kept = carol.cookies.clone();
    let csrf = carol.cookies["factorydash_form"].clone();
    let (status, _, _) = carol.form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    carol.cookies = kept;
    assert_eq!(
        carol.get("/api/devices").await.0,
        401,
        "the old session cookie is dead"
    );
    assert_eq!(carol2.get("/api/devices").await.0, 200);
    // Her live stream, open before she is disabled.
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            ws_url.as_str(),
        )
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", carol2.cookie_header().parse().unwrap());
    let (mut live, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let (status, _) = ada
        .json(
            reqwest::Method::POST,
            "/api/users",
            Some(json!({ "name": "carol", "disabled": true })),
        )
        .await;
    assert_eq!(status, 200);
    // Closed at its next heartbeat (every 15 s).
    let closed = tokio::time::timeout(Duration::from_secs(25), async {
        while let Some(m) = live.next().await {
            match m {
                Ok(tokio_tungstenite::tungstenite::Message::Close(frame)) => {
                    return frame.map(|f| f.code)
                }
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("a disabled user's live stream is closed");
    assert_eq!(
        closed,
        Some(tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Policy)
    );
    assert_eq!(
        carol2.get("/api/devices").await.0,
        401,
        "disabled: out at once"
    );
    assert_eq!(carol2.sign_in("carol", CAROL_PASSWORD).await, 401);

    // Guessing is slowed: per user name, whoever asks.
    let mut guesser = Client::new(&base, Some("127.0.0.5".parse().unwrap()));
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(guesser.sign_in("ada", "not the password").await);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");

    // The audit log: who did what, from where; never a secret.
    let (status, audit) = ada
        .json(reqwest::Method::GET, "/api/audit?limit=1000", None)
        .await;
    assert_eq!(status, 200);
    let actions: BTreeSet<(String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (actor, action) in [
        ("ada", "login-failed"),
        ("(unknown user)", "login-failed"),
        ("ada", "login"),
        ("ada", "user-added"),
        ("ada", "group-added"),
        ("carol", "login"),
        ("carol", "token-added"),
        ("carol", "token-revoked"),
        ("carol", "logout"),
        ("ada", "user-changed"),
        ("ada", "login-limited"),
    ] {
        assert!(
            actions.contains(&(actor.to_owned(), action.to_owned())),
            "no {actor} {action} in {actions:?}"
        );
    }
    let csv = ada.get("/api/audit?format=csv").await.1;
    for secret_text in [
        ADA_PASSWORD,
        CAROL_PASSWORD,
        &secret,
        "wrong password!",
        "nobody",
    ] {
        assert!(!csv.contains(secret_text), "the audit log holds a secret");
    }
    assert!(csv.contains("127.0.0.3"), "addresses are kept");
    let admin_page = ada.page("/admin").await;
    assert_eq!(admin_page.0, 200);
    assert!(admin_page.1.contains("one-machine") && admin_page.1.contains("carol"));
    fd.terminate(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("fd-accounts-{}", rand::random::<u32>()));
    let dir_text = dir.to_str().unwrap().to_owned();
    accounts_on(&["--data-dir", &dir_text]).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_on_postgres() {
    let Some(server) = postgres_url("accounts") else {
        return;
    };
    let db = FreshDb::create(&server, "accounts").await;
    accounts_on(&["--database-url", &db.url]).await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_auth_proxy_is_taken_from_its_address_only() {
    let dir = std::env::temp_dir().join(format!("fd-proxy-{}", rand::random::<u32>()));
    let dir_text = dir.to_str().unwrap().to_owned();
    let store = ["--data-dir", dir_text.as_str()];
    let (ok, out) = user_cli(&store, &["add", "--admin", "ada"], ADA_PASSWORD).await;
    assert!(ok, "{out}");
    let (fd, _log) = start_logged(
        &[
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &dir_text,
            "--auth-proxy-header",
            "X-Forwarded-User",
            "--auth-proxy-from",
            "127.0.0.1",
        ],
        &[],
    )
    .await;
    let ask = |from: &str, user: &str, path: &str| {
        reqwest::Client::builder()
            .local_address(from.parse::<IpAddr>().unwrap())
            .build()
            .unwrap()
            .get(format!("{}{path}", fd.base))
            .header("x-forwarded-user", user)
            .send()
    };
    // From the proxy: the admin by name; a new user made on first sight (no group: no
    // machine).
    let r = ask("127.0.0.1", "ada", "/api/users").await.unwrap();
    assert_eq!(r.status(), 200);
    let r = ask("127.0.0.1", "dave@plant.example", "/api/devices")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!([]));
    let r = ask("127.0.0.1", "ada", "/api/users").await.unwrap();
    assert!(r.text().await.unwrap().contains("dave@plant.example"));
    // From anywhere else: refused, even naming the admin.
    let r = ask("127.0.0.9", "ada", "/api/users").await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("--auth-proxy-from"));
    // Two values (a proxy that appends the client's own): refused.
    let two = reqwest::Client::builder()
        .local_address("127.0.0.1".parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
        .get(format!("{}/api/users", fd.base))
        .header("x-forwarded-user", "ada")
        .header("x-forwarded-user", "dave@plant.example")
        .send()
        .await
        .unwrap();
    assert_eq!(two.status(), 403);
    // A name that cannot be a user's.
    let r = ask("127.0.0.1", "a b", "/api/devices").await.unwrap();
    assert_eq!(r.status(), 403);
    fd.terminate(Duration::from_secs(10)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_takes_as_long_for_an_unknown_user() {
    let dir = std::env::temp_dir().join(format!("fd-timing-{}", rand::random::<u32>()));
    let dir_text = dir.to_str().unwrap().to_owned();
    let store = ["--data-dir", dir_text.as_str()];
    let (ok, out) = user_cli(&store, &["add", "--admin", "ada"], ADA_PASSWORD).await;
    assert!(ok, "{out}");
    let (fd, _log) = start_logged(
        &[
            "serve",
            "--agent",
            "http://127.0.0.1:9/",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &dir_text,
        ],
        &[],
    )
    .await;
    // Each try from an address of its own (the limits are per address and per name).
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..4u8 {
        for (user, times) in [("ada", &mut known), ("nobody-here", &mut unknown)] {
            let from: IpAddr = format!("127.0.{}.{}", 10 + i, if user == "ada" { 1 } else { 2 })
                .parse()
                .unwrap();
            let mut b = Client::new(&fd.base, Some(from));
            let csrf = b.login_token().await;
            let t = Instant::now();
            let (status, _, _) = b
                .form(
                    "/login",
                    &[
                        ("csrf", &csrf),
                        ("user", user),
                        ("password", "not it at all"),
                    ],
                )
                .await;
            times.push(t.elapsed());
            assert_eq!(status, 401);
        }
    }
    known.sort();
    unknown.sort();
    // Medians: the unknown user's hash check is as costly as the known one's (an
    // Argon2id hash takes tens of ms; a missing check would answer in well under one).
    let (k, u) = (known[2], unknown[2]);
    println!("sign-in with a wrong password: known user {k:?}, unknown user {u:?} (medians)");
    assert!(
        u * 3 > k,
        "an unknown user is answered much faster: {u:?} against {k:?}"
    );
    fd.terminate(Duration::from_secs(10)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a route answers each reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// 200 (or the given success) for every signed-in reader.
    Everyone(u16),
    /// The success for an admin, 404 for a scoped viewer or operator (a device outside
    /// the scope does not exist for them).
    InScopeOnly(u16),
    /// The success for an admin, 403 for the others.
    AdminOnly(u16),
}

/// Every route × every role (nobody, a viewer and an operator scoped to one device, an
/// admin) × in and out of scope, on `store`.
async fn every_route_for_every_role(store: &[&str]) {
    let (ok, out) = user_cli(store, &["add", "--admin", "ada"], ADA_PASSWORD).await;
    assert!(ok, "{out}");
    let mut args = vec![
        "serve",
        "--demo",
        "--speed",
        "20",
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(store);
    let (fd, _log): (Running, _) = start_logged(&args, &[]).await;
    let base = fd.base.clone();
    let mut ada = Client::new(&base, Some("127.0.1.1".parse().unwrap()));
    assert_eq!(ada.sign_in("ada", ADA_PASSWORD).await, 303);
    // The recording's device models are stored once its replay has begun: wait for two.
    let mut devices = Value::Null;
    for _ in 0..300 {
        let (_, body) = ada.get("/api/devices").await;
        devices = serde_json::from_str(&body).unwrap();
        if devices.as_array().is_some_and(|d| d.len() >= 2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let device = |i: usize| {
        let d = &devices.as_array().unwrap()[i]["device"];
        (
            d["name"].as_str().unwrap().to_owned(),
            d["dataItems"][0]["id"].as_str().unwrap().to_owned(),
        )
    };
    let ((mine, mine_item), (other, other_item)) = (device(0), device(1));
    for (user, role) in [("vera", "viewer"), ("otto", "operator")] {
        let (status, body) = ada
            .json(
                reqwest::Method::POST,
                "/api/users",
                Some(json!({ "name": user, "password": CAROL_PASSWORD })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = ada
            .json(
                reqwest::Method::POST,
                "/api/groups",
                Some(json!({ "name": format!("{role}s"), "role": role,
                             "scope": [format!("device:{mine}")], "members": [user] })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let mut vera = Client::new(&base, Some("127.0.1.2".parse().unwrap()));
    assert_eq!(vera.sign_in("vera", CAROL_PASSWORD).await, 303);
    let mut otto = Client::new(&base, Some("127.0.1.3".parse().unwrap()));
    assert_eq!(otto.sign_in("otto", CAROL_PASSWORD).await, 303);
    let mut nobody = Client::new(&base, Some("127.0.1.4".parse().unwrap()));

    use Expect::*;
    let from = "from=2000-01-01T00:00:00Z";
    let gets: Vec<(String, Expect)> = vec![
        ("/".into(), Everyone(200)),
        ("/?wall=1".into(), Everyone(200)),
        (format!("/device?name={mine}"), Everyone(200)),
        (format!("/device?name={other}"), InScopeOnly(200)),
        ("/agents".into(), Everyone(200)),
        ("/account".into(), Everyone(200)),
        ("/api/devices".into(), Everyone(200)),
        ("/api/latest".into(), Everyone(200)),
        ("/api/latest?at=2030-01-01T00:00:00Z".into(), Everyone(200)),
        (
            format!("/api/series?device={mine}&dataItemId={mine_item}"),
            Everyone(200),
        ),
        (
            format!("/api/series?device={other}&dataItemId={other_item}"),
            InScopeOnly(200),
        ),
        (
            format!("/api/series?device={mine}&dataItemId={mine_item}&maxPoints=40"),
            Everyone(200),
        ),
        (
            format!("/api/export?device={mine}&dataItemId={mine_item}"),
            Everyone(200),
        ),
        (
            format!("/api/export?device={other}&dataItemId={other_item}"),
            InScopeOnly(200),
        ),
        (
            format!("/api/utilization?device={mine}&{from}"),
            Everyone(200),
        ),
        (
            format!("/api/utilization?device={other}&{from}"),
            InScopeOnly(200),
        ),
        (format!("/api/alarms?device={mine}&{from}"), Everyone(200)),
        (
            format!("/api/alarms?device={other}&{from}"),
            InScopeOnly(200),
        ),
        (format!("/api/alarms?{from}&format=csv"), Everyone(200)),
        (format!("/api/stops?device={mine}"), Everyone(200)),
        (format!("/api/stops?device={other}"), InScopeOnly(200)),
        ("/api/downtime?period=day".into(), Everyone(200)),
        ("/report?period=day".into(), Everyone(200)),
        ("/api/gaps".into(), Everyone(200)),
        ("/api/agents".into(), Everyone(200)),
        ("/api/tokens".into(), Everyone(200)),
        ("/metrics".into(), AdminOnly(200)),
        ("/admin".into(), AdminOnly(200)),
        ("/admin/alarms".into(), AdminOnly(200)),
        ("/api/alarms/active".into(), Everyone(200)),
        ("/api/alarms/deliveries".into(), AdminOnly(200)),
        ("/api/users".into(), AdminOnly(200)),
        ("/api/groups".into(), AdminOnly(200)),
        ("/api/audit".into(), AdminOnly(200)),
        ("/api/audit?format=csv".into(), AdminOnly(200)),
    ];
    let others = [other.clone()];
    for (path, expect) in &gets {
        assert_eq!(nobody.get(path).await.0, 401, "nobody: {path}");
        let (status, _, location) = nobody.page(path).await;
        if path.starts_with("/api/") {
            assert_eq!(
                status, 401,
                "the API answers a browser as any client: {path}"
            );
        } else {
            assert_eq!(status, 303, "nobody's browser is sent to sign in: {path}");
            assert!(location.unwrap().starts_with("/login?next="));
        }
        for (who, client, admin) in [
            ("vera", &mut vera, false),
            ("otto", &mut otto, false),
            ("ada", &mut ada, true),
        ] {
            let (status, body) = client.get(path).await;
            let wanted = match (expect, admin) {
                (Everyone(ok), _) | (InScopeOnly(ok) | AdminOnly(ok), true) => *ok,
                (InScopeOnly(_), false) => 404,
                (AdminOnly(_), false) => 403,
            };
            assert_eq!(status, wanted, "{who}: GET {path}: {body}");
            if !admin && status == 200 {
                assert!(
                    mentioned(&body, &others).is_empty(),
                    "{who}: GET {path} shows a device outside the scope"
                );
            }
        }
    }
    // The live stream: signed-in readers only.
    let ws = format!("{}/ws", base.replace("http://", "ws://"));
    for (who, cookie) in [("vera", vera.cookie_header()), ("nobody", String::new())] {
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                ws.as_str(),
            )
            .unwrap();
        if !cookie.is_empty() {
            request
                .headers_mut()
                .insert("cookie", cookie.parse().unwrap());
        }
        let answer = tokio_tungstenite::connect_async(request).await;
        match (who, answer) {
            ("vera", Ok(_)) => {}
            ("nobody", Err(tokio_tungstenite::tungstenite::Error::Http(r))) => {
                assert_eq!(r.status(), 401)
            }
            (who, other) => panic!("{who}: /ws: {:?}", other.map(|(_, r)| r.status())),
        }
    }
    fd.terminate(Duration::from_secs(10)).await;

    // Changes: admins only (viewers and operators are refused before anything happens).
    // The demo follows no agents: the same store, served following one.
    let mut args = vec![
        "serve",
        "--agent",
        "http://127.0.0.1:9/",
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(store);
    let (fd, _log): (Running, _) = start_logged(&args, &[]).await;
    let base = fd.base.clone();
    let mut ada = Client::new(&base, Some("127.0.2.1".parse().unwrap()));
    let mut vera = Client::new(&base, Some("127.0.2.2".parse().unwrap()));
    let mut otto = Client::new(&base, Some("127.0.2.3".parse().unwrap()));
    let mut nobody = Client::new(&base, Some("127.0.2.4".parse().unwrap()));
    assert_eq!(ada.sign_in("ada", ADA_PASSWORD).await, 303);
    assert_eq!(vera.sign_in("vera", CAROL_PASSWORD).await, 303);
    assert_eq!(otto.sign_in("otto", CAROL_PASSWORD).await, 303);
    let url = "http://127.0.0.1:7/matrix";
    let changes: Vec<(reqwest::Method, String, Option<Value>, u16)> = vec![
        (
            reqwest::Method::POST,
            "/api/agents".into(),
            Some(json!({ "url": url })),
            201,
        ),
        (
            reqwest::Method::POST,
            format!("/api/agents/pause?url={url}"),
            None,
            200,
        ),
        (
            reqwest::Method::POST,
            format!("/api/agents/resume?url={url}"),
            None,
            200,
        ),
        (
            reqwest::Method::DELETE,
            format!("/api/agents?url={url}"),
            None,
            204,
        ),
        (
            reqwest::Method::POST,
            "/api/users".into(),
            Some(json!({ "name": "matrix-user" })),
            200,
        ),
        (
            reqwest::Method::DELETE,
            "/api/users?name=matrix-user".into(),
            None,
            200,
        ),
        (
            reqwest::Method::POST,
            "/api/groups".into(),
            Some(json!({ "name": "matrix", "role": "viewer", "scope": ["*"], "members": [] })),
            200,
        ),
        (
            reqwest::Method::DELETE,
            "/api/groups?name=matrix".into(),
            None,
            200,
        ),
    ];
    for (method, path, body, ok) in changes {
        for (who, client) in [("vera", &mut vera), ("otto", &mut otto)] {
            let (status, answer) = client.json(method.clone(), &path, body.clone()).await;
            assert_eq!(status, 403, "{who}: {method} {path}: {answer}");
        }
        let (status, answer) = nobody.json(method.clone(), &path, body.clone()).await;
        assert_eq!(status, 401, "nobody: {method} {path}: {answer}");
        let (status, answer) = ada.json(method.clone(), &path, body.clone()).await;
        assert_eq!(status, ok, "ada: {method} {path}: {answer}");
    }

    // The agents page's forms, as a browser without JavaScript posts them.
    let (status, page, _) = ada.page("/agents").await;
    assert_eq!(status, 200);
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("the forms carry a token")
        + 19;
    let csrf = page[at..at + 64].to_owned();
    for (action, code, done) in [
        ("add", "agent-added", "Agent added"),
        ("pause", "agent-paused", "Paused"),
        ("resume", "agent-resumed", "Resumed"),
        ("remove", "agent-removed", "Agent removed"),
    ] {
        let fields = [("csrf", csrf.as_str()), ("action", action), ("url", url)];
        let (status, _, _) = vera.form("/admin/agents", &fields).await;
        assert_eq!(status, 403, "vera: {action}");
        let (status, _, _) = ada
            .form("/admin/agents", &[("action", action), ("url", url)])
            .await;
        assert_eq!(status, 403, "without the form's token: {action}");
        let (status, body, _) = ada.form("/admin/agents", &fields).await;
        assert_eq!(status, 303, "{action}: {body}");
        let (_, page, _) = ada.page(&format!("/agents?done={code}")).await;
        assert!(page.contains(done), "{action}: the page says what was done");
        let listed = page.contains("http://127.0.0.1:7/matrix");
        assert_eq!(
            listed,
            action != "remove",
            "{action}: the agent is listed or not"
        );
    }
    let (_, page, _) = ada.page("/agents?done=%3Cscript%3E").await;
    assert!(
        !page.contains("<script>"),
        "nothing from the address is shown"
    );
    let (status, body, _) = ada
        .form(
            "/admin/agents",
            &[
                ("csrf", &csrf),
                ("action", "add"),
                ("url", "ftp://<b>x</b>"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("Back to the agents") && !body.contains("<b>x"),
        "{body}"
    );
    fd.terminate(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_for_every_role_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("fd-matrix-{}", rand::random::<u32>()));
    let dir_text = dir.to_str().unwrap().to_owned();
    every_route_for_every_role(&["--data-dir", &dir_text]).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_for_every_role_on_postgres() {
    let Some(server) = postgres_url("matrix") else {
        return;
    };
    let db = FreshDb::create(&server, "matrix").await;
    every_route_for_every_role(&["--database-url", &db.url]).await;
    db.drop().await;
}

/// In Chromium: the board sends a browser to sign in; the form signs in; a scoped user's
/// board shows their machine only, live; the header links to the account, where they
/// sign out.
#[tokio::test(flavor = "multi_thread")]
async fn a_browser_signs_in_sees_its_scope_and_signs_out() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("fd-browser-login-{}", rand::random::<u32>()));
    let dir_text = dir.to_str().unwrap().to_owned();
    let store = ["--data-dir", dir_text.as_str()];
    let (ok, out) = user_cli(&store, &["add", "--admin", "ada"], ADA_PASSWORD).await;
    assert!(ok, "{out}");
    let (fd, _log) = start_logged(
        &[
            "serve",
            "--demo",
            "--speed",
            "20",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &dir_text,
        ],
        &[],
    )
    .await;
    let base = fd.base.clone();
    let mut ada = Client::new(&base, None);
    assert_eq!(ada.sign_in("ada", ADA_PASSWORD).await, 303);
    let (_, devices) = ada.get("/api/devices").await;
    let devices: Value = serde_json::from_str(&devices).unwrap();
    let names: Vec<String> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device"]["name"].as_str().unwrap().to_owned())
        .collect();
    let mine = names[0].clone();
    let others = names[1..].to_vec();
    let (status, body) = ada
        .json(
            reqwest::Method::POST,
            "/api/users",
            Some(json!({ "name": "carol", "displayName": "Carol K.", "password": CAROL_PASSWORD })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = ada
        .json(
            reqwest::Method::POST,
            "/api/groups",
            Some(json!({ "name": "cell-a", "role": "operator", "scope": [format!("device:{mine}")], "members": ["carol"] })),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    browser.open(&format!("{base}/")).await;
    assert_eq!(
        browser.eval("return location.pathname").await,
        json!("/login")
    );
    browser.screenshot("login-1280").await;
    browser.type_into("#user", "carol").await;
    browser.type_into("#password", "not her password").await;
    browser
        .click("form[action='/login'] button[type=submit]")
        .await;
    browser
        .wait_until(
            "the refusal",
            Duration::from_secs(15),
            "return document.readyState === 'complete' && document.body.innerText.includes('Wrong name or password')",
        )
        .await;
    browser.type_into("#user", "carol").await;
    browser.type_into("#password", CAROL_PASSWORD).await;
    browser
        .click("form[action='/login'] button[type=submit]")
        .await;
    // The click returns as the form is sent: the board comes after the redirect.
    browser
        .wait_until(
            "the board after signing in",
            Duration::from_secs(15),
            "return location.pathname === '/' && document.readyState === 'complete'",
        )
        .await;
    browser
        .wait_until(
            "the board live",
            Duration::from_secs(15),
            "return document.querySelector('#live').textContent === 'live'",
        )
        .await;
    // Wait for some live rounds, then read what the board shows.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let text = browser.eval("return document.body.innerText").await;
    let text = text.as_str().unwrap();
    assert!(text.contains(&mine), "{text}");
    assert!(
        mentioned(text, &others).is_empty(),
        "the board shows another cell's machine: {text}"
    );
    let html = browser
        .eval("return document.documentElement.outerHTML")
        .await;
    assert!(
        mentioned(html.as_str().unwrap(), &others).is_empty(),
        "nor does its markup"
    );
    let link = browser
        .eval("return document.querySelector('.account-links a[href=\"/account\"]').textContent")
        .await;
    assert_eq!(link, json!("Carol K."));
    browser.screenshot("board-signed-in-1280").await;
    browser.resize(390, 844).await;
    browser.screenshot("board-signed-in-390").await;
    browser.resize(1280, 1400).await;

    browser.click(".account-links a[href='/account']").await;
    browser
        .wait_until(
            "the account page",
            Duration::from_secs(15),
            "return location.pathname === '/account' && document.readyState === 'complete'",
        )
        .await;
    browser.screenshot("account-1280").await;
    browser
        .click("form[action='/logout'] button[type=submit]")
        .await;
    browser
        .wait_until(
            "the sign-in page after signing out",
            Duration::from_secs(15),
            "return location.pathname === '/login' && document.readyState === 'complete'",
        )
        .await;
    browser.open(&format!("{base}/api/devices")).await;
    let after = browser.eval("return document.body.innerText").await;
    assert!(
        after.as_str().unwrap().contains("sign in"),
        "signed out: {after}"
    );
    browser.quit().await;
    fd.terminate(Duration::from_secs(10)).await;
    let _ = std::fs::remove_dir_all(&dir);
}
