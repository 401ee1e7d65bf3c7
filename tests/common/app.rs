//! The service started in this process on a free port, and an HTTP client that
//! speaks to it as a browser or a script would: forms, cookies, tokens.

use reqwest::header::{self, HeaderMap};
use reqwest::{Client, Response, StatusCode};
use sitepulse::Server;
use sitepulse::config::Config;

use super::TestDb;

pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password-123";

pub struct App {
    pub server: Server,
    pub base: String,
    pub client: Client,
    pub db: TestDb,
}

/// How a request proves who sends it.
#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Cookie(String),
    Bearer(String),
    Basic(String, String),
}

impl App {
    /// Starts the service with the first admin's password set, a generous sign-in
    /// limit and `tweak` applied to the configuration.
    pub async fn start(db: TestDb, tweak: impl FnOnce(&mut Config)) -> Self {
        sitepulse::install_crypto_provider();
        let mut config = Config::defaults();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.database_url = db.url_string();
        config.admin_password = Some(ADMIN_PASSWORD.into());
        config.login_rate_limit = 1000.try_into().unwrap();
        tweak(&mut config);
        let server = Server::start(config).await.expect("start the service");
        let base = format!("http://{}", server.addr());
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            server,
            base,
            client,
            db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: &Auth,
    ) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match auth {
            Auth::None => builder,
            Auth::Cookie(token) => {
                builder.header(header::COOKIE, format!("sitepulse_session={token}"))
            }
            Auth::Bearer(token) => builder.bearer_auth(token),
            Auth::Basic(user, password) => builder.basic_auth(user, Some(password)),
        }
    }

    pub async fn get(&self, path: &str, auth: &Auth) -> Response {
        self.request(reqwest::Method::GET, path, auth)
            .send()
            .await
            .unwrap()
    }

    /// A form post as a browser sends it from this site's own page.
    pub fn form_request(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        auth: &Auth,
    ) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, path, auth)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ORIGIN, &self.base)
            .header("sec-fetch-site", "same-origin")
            .body(form_body(fields))
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)], auth: &Auth) -> Response {
        self.form_request(path, fields, auth).send().await.unwrap()
    }

    /// Runs a GraphQL operation; the HTTP status and the JSON answer.
    pub async fn gql(
        &self,
        auth: &Auth,
        query: &str,
        variables: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let body = serde_json::json!({ "query": query, "variables": variables });
        let response = self
            .request(reqwest::Method::POST, "/graphql", auth)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (status, value)
    }

    /// Runs an operation that must succeed; its `data`.
    pub async fn gql_ok(
        &self,
        auth: &Auth,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let (status, body) = self.gql(auth, query, variables).await;
        assert!(
            status == StatusCode::OK && body.get("errors").is_none(),
            "{query}: {status} {body}"
        );
        body["data"].clone()
    }

    /// Stops the service and hands back its database.
    pub async fn stop(self) -> TestDb {
        self.server.shutdown();
        self.server.wait().await.expect("the service stops cleanly");
        self.db
    }

    /// Signs in through the form; the session token from the cookie on success,
    /// the status otherwise.
    pub async fn login(&self, username: &str, password: &str) -> Result<String, StatusCode> {
        let response = self
            .post_form(
                "/login",
                &[("username", username), ("password", password)],
                &Auth::None,
            )
            .await;
        if response.status() != StatusCode::SEE_OTHER {
            return Err(response.status());
        }
        Ok(session_cookie(response.headers()).expect("a session cookie"))
    }

    pub async fn admin(&self) -> Auth {
        Auth::Cookie(
            self.login(ADMIN, ADMIN_PASSWORD)
                .await
                .expect("admin signs in"),
        )
    }

    /// Creates an API token through the account page and returns its secret.
    pub async fn create_token(&self, auth: &Auth, name: &str) -> String {
        let response = self
            .post_form("/account/tokens", &[("name", name)], auth)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let page = response.text().await.unwrap();
        extract_token(&page).expect("the page shows the new token")
    }
}

pub fn form_body(fields: &[(&str, &str)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        out.append_pair(k, v);
    }
    out.finish()
}

/// The value of the session cookie a response sets.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    set_cookie(headers)?
        .split(';')
        .next()?
        .strip_prefix("sitepulse_session=")
        .map(str::to_owned)
}

pub fn set_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sitepulse_session="))
        .map(str::to_owned)
}

pub fn extract_token(page: &str) -> Option<String> {
    let start = page.find("sp360_")?;
    let token: String = page[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    Some(token)
}
