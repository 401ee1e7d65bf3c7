//! Bad input at the edge, against the real binary: a few thousand malformed, huge,
//! deeply nested and odd requests to `/graphql`, the forms and the pages, signed in
//! and not. No answer may be a server error, the process stays up, and its memory
//! stays bounded. `FUZZ_SEED` and `FUZZ_CASES` change the run (the seed of a
//! failing case is printed).

mod common;

use std::time::Duration;

use common::{TestDb, service};
use reqwest::{Client, Method};
use serde_json::{Value, json};

const PASSWORD: &str = "fuzz-admin-password";

/// xorshift64*: enough randomness to vary inputs, and a seed reproduces a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Strings that have broken parsers before: control characters, bidirectional
/// overrides, combining marks, byte order marks, the last code point, lookalike
/// schemes, broken URLs, SQL and HTML, numbers out of range.
fn odd_strings() -> Vec<String> {
    vec![
        String::new(),
        " ".into(),
        "\0".into(),
        "a\0b".into(),
        "\u{202E}lmth.exe".into(),
        format!("e{}", "\u{301}".repeat(200)),
        "😀".repeat(300),
        "\u{FEFF}name".into(),
        "\u{10FFFF}".into(),
        "\r\n\t".into(),
        "ｈｔｔｐ://example.com".into(),
        "http://[::1".into(),
        "http://exa mple.com/".into(),
        "javascript:alert(1)".into(),
        "http://xn--/".into(),
        "http://".into(),
        "https://example.com:99999/".into(),
        "http://user:pass@example.com/".into(),
        format!("https://example.com/{}", "a".repeat(5000)),
        "%00".into(),
        "%zz".into(),
        "../../etc/passwd".into(),
        "'; DROP TABLE websites; --".into(),
        "<script>alert(1)</script>".into(),
        "9".repeat(40),
        "-1".into(),
        "0".into(),
        "1e309".into(),
        "NaN".into(),
        "-0.0".into(),
        "x".repeat(100_000),
    ]
}

const WORDS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    ":",
    "$",
    "!",
    "@",
    "...",
    "[",
    "]",
    "=",
    ",",
    "\"",
    "query",
    "mutation",
    "subscription",
    "fragment",
    "on",
    "websites",
    "website",
    "id",
    "name",
    "url",
    "status",
    "history",
    "checks",
    "createWebsite",
    "deleteWebsite",
    "updateWebsite",
    "login",
    "input",
    "__schema",
    "__type",
    "types",
    "fields",
    "cluster",
    "me",
    "users",
    "first",
    "after",
    "1",
    "-1",
    "\"x\"",
    "null",
    "true",
    "1e999",
    "#",
    "\n",
    "\\u0000",
];

struct Case {
    what: String,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    signed_in: bool,
}

fn graphql(what: &str, body: Vec<u8>, signed_in: bool) -> Case {
    Case {
        what: what.into(),
        method: Method::POST,
        path: "/graphql".into(),
        content_type: Some("application/json"),
        body,
        signed_in,
    }
}

fn json_body(query: &str, variables: Value) -> Vec<u8> {
    json!({ "query": query, "variables": variables })
        .to_string()
        .into_bytes()
}

fn nested(open: &str, close: &str, depth: usize, inner: &str) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

fn form(path: &str, fields: &[(&str, String)], signed_in: bool) -> Case {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        body.append_pair(k, v);
    }
    Case {
        what: format!("form {path}"),
        method: Method::POST,
        path: path.into(),
        content_type: Some("application/x-www-form-urlencoded"),
        body: body.finish().into_bytes(),
        signed_in,
    }
}

fn case(rng: &mut Rng, odd: &[String], website: &str) -> Case {
    let signed_in = rng.below(3) != 0;
    let s = |rng: &mut Rng| rng.pick(odd).clone();
    match rng.below(16) {
        0 => {
            let len = rng.below(3000);
            graphql("random bytes", rng.bytes(len), signed_in)
        }
        1 => {
            let n = 1 + rng.below(60);
            let soup: Vec<&str> = (0..n).map(|_| *rng.pick(WORDS)).collect();
            graphql(
                "token soup",
                json_body(&soup.join(" "), json!({})),
                signed_in,
            )
        }
        2 => {
            let shapes = [
                "[]",
                "null",
                "{\"query\": 5}",
                "{\"query\": null}",
                "{\"variables\": []}",
                "{\"query\": \"{ websites { id } }\", \"variables\": \"x\"}",
                "{\"query\": \"{ websites { id } }\", \"operationName\": 7}",
                "{\"query\": \"{ websites { id } }\"",
                "\"\\ud800\"",
                "{\"query\": \"\\ud800\"}",
                "{}",
            ];
            graphql(
                "wrong JSON shapes",
                rng.pick(&shapes).as_bytes().to_vec(),
                signed_in,
            )
        }
        3 => {
            let depth = 1 + rng.below(5_000);
            let query = nested("{ websites ", "}", depth, "{ id }");
            graphql(
                "deeply nested selection",
                json_body(&query, json!({})),
                signed_in,
            )
        }
        4 => {
            let depth = 1 + rng.below(5_000);
            let body = format!(
                "{{\"query\": \"query($v: String) {{ websites {{ id }} }}\", \"variables\": {{\"v\": {}}}}}",
                nested("[", "]", depth, "1")
            );
            graphql("deeply nested variables", body.into_bytes(), signed_in)
        }
        5 => {
            let n = 1 + rng.below(1_000);
            let fields: String = (0..n)
                .map(|i| format!("a{i}: websites {{ id name history(days: 30) {{ day }} }} "))
                .collect();
            graphql(
                "many aliases",
                json_body(&format!("{{ {fields} }}"), json!({})),
                signed_in,
            )
        }
        6 => {
            let size = 60 * 1024 + rng.below(3 * 1024 * 1024);
            graphql("oversized body", vec![b' '; size], signed_in)
        }
        7 => {
            let id = s(rng);
            graphql(
                "odd website ids",
                json_body(
                    "query($id: ID!) { website(id: $id) { id name history(days: 30) { day } } }",
                    json!({ "id": id }),
                ),
                signed_in,
            )
        }
        8 => {
            let op = *rng.pick(&[
                "mutation($id: ID!) { deleteWebsite(id: $id) { id } }",
                "mutation($id: ID!) { checkNow(id: $id) { up } }",
                "mutation($id: ID!, $n: String) { updateWebsite(id: $id, input: {name: $n}) { id } }",
            ]);
            let id = if rng.below(2) == 0 {
                s(rng)
            } else {
                format!("{website}{}", s(rng))
            };
            graphql(
                "mutations on odd ids",
                json_body(op, json!({ "id": id, "n": s(rng) })),
                signed_in,
            )
        }
        9 => {
            let interval = rng
                .pick(&[
                    json!(-1),
                    json!(0),
                    json!(1e308),
                    json!("60"),
                    json!(0.0001),
                    json!(null),
                ])
                .clone();
            graphql(
                "create with odd input",
                json_body(
                    "mutation($n: String!, $u: String!, $i: Float) { createWebsite(input: {name: $n, url: $u, intervalSeconds: $i}) { id } }",
                    json!({ "n": s(rng), "u": s(rng), "i": interval }),
                ),
                signed_in,
            )
        }
        10 => {
            let batch: Vec<Value> = (0..1 + rng.below(300))
                .map(|_| json!({ "query": "{ websites { id } }" }))
                .collect();
            graphql(
                "batch",
                Value::Array(batch).to_string().into_bytes(),
                signed_in,
            )
        }
        11 => form(
            "/login",
            &[("username", s(rng)), ("password", s(rng)), ("next", s(rng))],
            false,
        ),
        12 => form(
            "/websites/new",
            &[
                ("name", s(rng)),
                ("url", s(rng)),
                ("interval", s(rng)),
                ("timeout", s(rng)),
            ],
            signed_in,
        ),
        13 => {
            let path = *rng.pick(&[
                "/websites/{id}/edit",
                "/websites/{id}/delete",
                "/websites/{id}/pause",
                "/users",
                "/account/password",
                "/account/tokens",
            ]);
            let id = if rng.below(2) == 0 {
                website.to_owned()
            } else {
                url::form_urlencoded::byte_serialize(s(rng).as_bytes()).collect()
            };
            let path = path.replace("{id}", &id);
            form(
                &format!("/{}", path.trim_start_matches('/')),
                &[
                    ("name", s(rng)),
                    ("url", s(rng)),
                    ("interval", s(rng)),
                    ("username", s(rng)),
                    ("password", s(rng)),
                    ("role", s(rng)),
                    ("current_password", s(rng)),
                    ("new_password", s(rng)),
                ],
                signed_in,
            )
        }
        14 => {
            let len = rng.below(5000);
            let mut c = form("/websites/new", &[], signed_in);
            c.what = "form with raw bytes".into();
            c.body = rng.bytes(len);
            if rng.below(2) == 0 {
                c.content_type = Some("multipart/form-data; boundary=x");
            }
            c
        }
        _ => {
            let target = s(rng);
            let encoded: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
            let path = *rng.pick(&[
                "/websites/{x}",
                "/websites/{x}/edit",
                "/?q={x}&status={x}",
                "/graphql?query={x}",
                "/assets/{x}",
                "/api/websites/{x}",
            ]);
            Case {
                what: "odd page addresses".into(),
                method: Method::GET,
                path: path.replace("{x}", &encoded),
                content_type: None,
                body: Vec::new(),
                signed_in,
            }
        }
    }
}

fn rss_mb(pid: u32) -> f64 {
    common::proc_memory_mb(pid, "VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_never_gets_a_server_error() {
    sitepulse::install_crypto_provider();
    let db = TestDb::sqlite();
    db.store().await;
    let (child, base) = service::spawn(&db, &[], &[("SITEPULSE_ADMIN_PASSWORD", PASSWORD)]).await;
    let pid = child.id();
    let service = Service(Some(child));
    // Connections are kept open between cases, as browsers and scripts keep them:
    // one the service must close (a body left unread) has to say so, or the next
    // case sent on it fails.
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    // A session for forms and the API, and one website to aim at.
    let login = client
        .post(format!("{base}/graphql"))
        .header("content-type", "application/json")
        .body(json_body(
            "mutation($p: String!) { login(username: \"admin\", password: $p) { token } }",
            json!({ "p": PASSWORD }),
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let login: Value = serde_json::from_str(&login).unwrap();
    let token = login["data"]["login"]["token"].as_str().unwrap().to_owned();
    let created = client
        .post(format!("{base}/graphql"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(json_body(
            "mutation { createWebsite(input: {name: \"aim\", url: \"http://127.0.0.1:9/\"}) { id } }",
            json!({}),
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let created: Value = serde_json::from_str(&created).unwrap();
    let website = created["data"]["createWebsite"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_5EED);
    let cases: usize = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000);
    let mut rng = Rng(seed | 1);
    let odd = odd_strings();
    let rss_before = rss_mb(pid);
    let mut peak = rss_before;
    let mut failures = Vec::new();
    let mut statuses = std::collections::BTreeMap::new();
    for n in 0..cases {
        let c = case(&mut rng, &odd, &website);
        let mut request = client
            .request(c.method.clone(), format!("{base}{}", c.path))
            .header("origin", &base)
            .header("sec-fetch-site", "same-origin")
            .body(c.body.clone());
        if let Some(content_type) = c.content_type {
            request = request.header("content-type", content_type);
        }
        if c.signed_in {
            request = request
                .bearer_auth(&token)
                .header("cookie", format!("sitepulse_session={token}"));
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                *statuses.entry(status.as_u16()).or_insert(0u32) += 1;
                let _ = response.bytes().await;
                if status.is_server_error() {
                    failures.push(format!(
                        "case {n} ({}) {} {}: {status}",
                        c.what,
                        c.method,
                        c.path.chars().take(120).collect::<String>()
                    ));
                }
            }
            Err(err) => {
                // Refusing an upload over the body limit may end the connection
                // before the client has sent it all; anything else is a failure.
                // A URL this client cannot even build (hyper's limit is 64 KiB)
                // never reaches the service.
                if c.body.len() <= 64 * 1024 && !err.is_builder() {
                    let chain: Vec<String> =
                        std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
                            .map(|e| e.to_string().chars().take(200).collect())
                            .collect();
                    failures.push(format!("case {n} ({}): {}", c.what, chain.join(": ")));
                }
            }
        }
        if n % 100 == 0 {
            peak = peak.max(rss_mb(pid));
        }
    }
    let rss_after = rss_mb(pid);
    peak = peak.max(rss_after);
    println!(
        "{cases} cases (seed {seed}): statuses {statuses:?}; RSS {rss_before:.1} MB before, peak {peak:.1} MB, {rss_after:.1} MB after"
    );
    assert!(
        failures.is_empty(),
        "server errors:\n{}",
        failures.join("\n")
    );
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "the process is still up");
    assert!(
        peak < rss_before + 150.0,
        "memory stays bounded: {rss_before:.1} MB before, peak {peak:.1} MB"
    );
    drop(service);
}

/// Stops the service when the test ends, failed or not.
struct Service(Option<std::process::Child>);

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            service::stop(child);
        }
    }
}
