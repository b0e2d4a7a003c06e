//! The `Allow` header of 405 answers (RFC 9110 §15.5.6), from the OpenAPI document itself, so it
//! can never disagree with the routes.

/// Route templates and the methods each accepts.
pub struct AllowIndex {
    routes: Vec<(Vec<Option<String>>, String)>,
}

impl AllowIndex {
    /// Reads `paths` of an OpenAPI document; `{name}` segments match any segment.
    pub fn from_spec(spec: &str) -> Self {
        let parsed: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
        let mut routes = Vec::new();
        if let Some(paths) = parsed.get("paths").and_then(|p| p.as_object()) {
            for (template, item) in paths {
                let Some(item) = item.as_object() else {
                    continue;
                };
                let methods: Vec<String> = item
                    .keys()
                    .filter(|m| {
                        ["get", "put", "post", "delete", "patch", "head", "options"]
                            .contains(&m.as_str())
                    })
                    .map(|m| m.to_ascii_uppercase())
                    .collect();
                let segments = template
                    .trim_start_matches('/')
                    .split('/')
                    .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                    .collect();
                routes.push((segments, methods.join(", ")));
            }
        }
        Self { routes }
    }

    /// The methods of the route `path` belongs to.
    pub fn allowed(&self, path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.routes
            .iter()
            .find(|(template, _)| {
                template.len() == segments.len()
                    && template
                        .iter()
                        .zip(&segments)
                        .all(|(t, s)| t.as_deref().is_none_or(|t| t == *s))
            })
            .map(|(_, methods)| methods.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_concrete_paths() {
        let index = AllowIndex::from_spec(
            r#"{"paths": {"/api/v1/zones/{zone_id}": {"patch": {}, "delete": {}},
                          "/customers": {"post": {}}}}"#,
        );
        assert_eq!(index.allowed("/api/v1/zones/abc"), Some("DELETE, PATCH"));
        assert_eq!(index.allowed("/customers"), Some("POST"));
        assert_eq!(index.allowed("/api/v1/zones/abc/x"), None);
    }
}
