//! The page shell: head with the embedded assets, a header with navigation and who
//! is signed in, the main content, and a footer.

use maud::{DOCTYPE, Markup, html};

use super::assets;
use crate::auth::model::User;

/// Which replica serves the page and which one runs the checker, for the footer.
#[derive(Clone)]
pub struct Replica {
    pub this: String,
    pub leader: Option<String>,
}

tokio::task_local! {
    /// Set for every page request by the web routes' middleware.
    pub static REPLICA: Replica;
}

pub fn page(title: &str, user: Option<&User>, body: Markup) -> Markup {
    let replica = REPLICA.try_with(Replica::clone).ok();
    let admin = user.is_some_and(User::is_admin);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowScriptTags":false,"allowEval":false,"historyRestoreAsHxRequest":false}"#;
                title { (title) " · Site Pulse 360" }
                link rel="icon" type="image/svg+xml" href=(assets::url("favicon.svg"));
                link rel="stylesheet" href=(assets::url("app.css"));
                script src=(assets::url("htmx.min.js")) defer {}
                script src=(assets::url("htmx-ext-sse.min.js")) defer {}
                script src=(assets::url("app.js")) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "Site Pulse 360" }
                    nav aria-label="Main" {
                        a href="/" { "Websites" }
                        @if admin {
                            a href="/websites/new" { "Add website" }
                            a href="/users" { "Users" }
                        }
                        a href="/graphql" { "API" }
                    }
                    div.who {
                        @if let Some(user) = user {
                            a href="/account" title="Your account and API tokens" { (user.username) }
                            span.role { (user.role) }
                            form.inline method="post" action="/logout" {
                                button type="submit" { "Sign out" }
                            }
                        } @else {
                            a href="/login" { "Sign in" }
                        }
                    }
                }
                main #main { (body) }
                footer.bottom {
                    "Site Pulse 360 " (env!("CARGO_PKG_VERSION"))
                    @if let Some(replica) = &replica {
                        " · served by " span.replica { (replica.this) }
                        " · checker on " span.leader {
                            (replica.leader.as_deref().unwrap_or("no replica right now"))
                        }
                    }
                }
            }
        }
    }
}
