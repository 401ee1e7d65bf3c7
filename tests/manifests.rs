//! The deployment files against the code: what a typo in a manifest would break.
//! The Lease RBAC names the Lease the code elects on, the probes point at routes
//! that answer, the container port is the one the service listens on, and the
//! security settings are as documented.

#[macro_use]
mod common;

use std::path::Path;

use common::TestDb;
use common::app::{App, Auth};
use reqwest::StatusCode;
use serde_json::Value;
use sitepulse::config::Config;

fn documents(path: &str) -> Vec<Value> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.split("\n---")
        .filter(|doc| {
            doc.lines()
                .any(|l| !l.trim().is_empty() && !l.starts_with('#'))
        })
        .map(|doc| serde_norway::from_str(doc).unwrap_or_else(|e| panic!("{path}: {e}")))
        .collect()
}

fn one(path: &str, kind: &str) -> Value {
    documents(path)
        .into_iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {path}"))
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn env<'a>(container: &'a Value, name: &str) -> &'a Value {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in the container's environment"))
}

#[test]
fn the_lease_rbac_matches_the_code() {
    let rules = one("k3s/app/rbac.yaml", "Role")["rules"].clone();
    let rules = rules.as_array().unwrap();
    let mut verbs = Vec::new();
    for rule in rules {
        assert_eq!(rule["apiGroups"][0], "coordination.k8s.io");
        assert_eq!(rule["resources"], serde_json::json!(["leases"]));
        if let Some(names) = rule["resourceNames"].as_array() {
            assert_eq!(names.len(), 1);
            assert_eq!(names[0], sitepulse::leader::kube::LEASE_NAME);
        }
        verbs.extend(rule["verbs"].as_array().unwrap().iter().cloned());
    }
    verbs.sort_by_key(|v| v.as_str().unwrap().to_owned());
    assert_eq!(
        verbs,
        ["create", "get", "patch", "update"],
        "only what the elector needs"
    );
    let binding = one("k3s/app/rbac.yaml", "RoleBinding");
    let account = one("k3s/app/rbac.yaml", "ServiceAccount");
    let deployment = one("k3s/app/deployment.yaml", "Deployment");
    assert_eq!(binding["subjects"][0]["name"], account["metadata"]["name"]);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        account["metadata"]["name"]
    );
    // The namespace the manifests deploy to is the code's default Lease namespace.
    let kustomization = documents("k3s/kustomization.yaml").remove(0);
    assert_eq!(kustomization["namespace"], Config::defaults().pod_namespace);
    let container = container(&deployment);
    assert_eq!(env(container, "SITEPULSE_LEADER_ELECTION")["value"], "kube");
    for (name, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        assert_eq!(
            env(container, name)["valueFrom"]["fieldRef"]["fieldPath"],
            field
        );
    }
}

#[test]
fn the_deployment_is_locked_down_and_rolls_without_downtime() {
    let deployment = one("k3s/app/deployment.yaml", "Deployment");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 3);
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        grace > Config::defaults().shutdown_grace.as_secs() + 10,
        "time to finish checks, write them and hand over"
    );
    let container = container(&deployment);
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.windows(2).any(|w| w == ["--log-format", "json"]));
    for (name, secret) in [
        ("DATABASE_URL", "sitepulse-db-app"),
        ("SITEPULSE_ADMIN_PASSWORD", "sitepulse-admin"),
    ] {
        assert_eq!(
            env(container, name)["valueFrom"]["secretKeyRef"]["name"],
            secret
        );
    }
    assert!(container["resources"]["limits"]["memory"].is_string());
    assert!(container["resources"]["requests"]["cpu"].is_string());
}

#[test]
fn ports_match_the_service_and_the_containerfile() {
    let default_port = Config::defaults().listen.port();
    let deployment = one("k3s/app/deployment.yaml", "Deployment");
    let container = container(&deployment);
    assert_eq!(container["ports"][0]["containerPort"], default_port);
    assert_eq!(
        env(container, "SITEPULSE_LISTEN")["value"],
        format!("0.0.0.0:{default_port}")
    );
    let service = one("k3s/app/service.yaml", "Service");
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"],
        container["ports"][0]["name"]
    );
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["template"]["metadata"]["labels"]
    );
    let containerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Containerfile"))
            .unwrap();
    assert!(containerfile.contains(&format!("EXPOSE {default_port}")));
    assert!(containerfile.contains("USER 65532"));
    assert!(containerfile.contains("\"/usr/local/bin/sitepulse\", \"healthcheck\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_probe_points_at_a_route_that_answers() {
    let deployment = one("k3s/app/deployment.yaml", "Deployment");
    let container = container(&deployment).clone();
    let app = App::start(TestDb::sqlite(), |_| {}).await;
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let path = container[probe]["httpGet"]["path"].as_str().unwrap();
        assert_eq!(container[probe]["httpGet"]["port"], "http");
        let response = app.get(path, &Auth::None).await;
        assert_eq!(response.status(), StatusCode::OK, "{probe} {path}");
    }
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    let metrics = annotations["prometheus.io/path"].as_str().unwrap();
    let response = app.get(metrics, &Auth::None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("sitepulse_leader"));
    app.stop().await;
}
