//! Static files embedded in the binary. Each is served under a URL that contains a
//! hash of its content, so browsers may keep it for a year: a new version of a file
//! gets a new URL.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const FILES: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/app.js"),
    },
    Asset {
        name: "htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/vendor/htmx-2.0.11.min.js"),
    },
    Asset {
        name: "htmx-ext-sse.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/vendor/htmx-ext-sse-2.2.4.min.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../assets/favicon.svg"),
    },
];

/// `(file name, URL path with the content hash)` for every asset.
static PATHS: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|asset| (asset.name, format!("/assets/{}", hashed_name(asset))))
        .collect()
});

/// `app.css` becomes `app.3f2a9c1e0b.css`: ten hex digits of its SHA-256.
fn hashed_name(asset: &Asset) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, asset.body);
    let hash: String = digest.as_ref()[..5]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    match asset.name.split_once('.') {
        Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
        None => format!("{}.{hash}", asset.name),
    }
}

/// The URL of an embedded asset, e.g. `url("app.css")`.
///
/// # Panics
/// When no asset has that name: names are fixed in this file and the templates.
pub fn url(name: &str) -> &'static str {
    PATHS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, path)| path.as_str())
        .unwrap_or_else(|| panic!("no embedded asset named {name}"))
}

/// `GET /assets/{file}`: only the current hashed names are served.
pub async fn serve(Path(file): Path<String>) -> Response {
    let wanted = format!("/assets/{file}");
    let Some(index) = PATHS.iter().position(|(_, path)| *path == wanted) else {
        return (StatusCode::NOT_FOUND, "no such asset\n").into_response();
    };
    let asset = &FILES[index];
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        asset.body,
    )
        .into_response()
}

/// `GET /favicon.ico`: browsers ask for it by that name before reading the page.
pub async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_bytes!("../../assets/favicon.svg").as_slice(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_distinct_hashed_url() {
        let css = url("app.css");
        assert!(
            css.starts_with("/assets/app.") && css.ends_with(".css"),
            "{css}"
        );
        assert_eq!(css.len(), "/assets/app..css".len() + 10);
        let mut all: Vec<_> = PATHS.iter().map(|(_, p)| p).collect();
        all.dedup();
        assert_eq!(all.len(), FILES.len());
    }
}
