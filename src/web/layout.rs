//! The page shell: head, header with who is signed in, main content.

use maud::{DOCTYPE, Markup, html};

use crate::auth::model::User;

pub fn page(title: &str, user: Option<&User>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Site Pulse 360" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                header.top {
                    a.brand href="/" { "Site Pulse 360" }
                    nav {
                        @if let Some(user) = user {
                            a href="/account" title="Your account" { (user.username) }
                            span.role { (user.role) }
                            form.inline method="post" action="/logout" {
                                button type="submit" { "Sign out" }
                            }
                        } @else {
                            a href="/login" { "Sign in" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}
