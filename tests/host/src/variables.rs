//! Spin variables: templates, names and providers, with Spin's rules
//! (`crates/expressions`, `crates/variables-env`).
//!
//! Spin asks its providers on every `get`; the values here cannot change while
//! the host runs (command line, environment, `.env`, defaults), so they are
//! resolved once at start, which also makes a missing required variable fail
//! the start, as `spin up` does.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Context as _};

use crate::manifest::{Manifest, VariableDef};

/// A parsed `"text {{ name }} text"` template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Expr(String),
}

impl Template {
    /// Splits on `{{ … }}`; an unmatched `{{` is an error, as in Spin.
    pub fn parse(template: &str) -> anyhow::Result<Self> {
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("{{") {
                let Some((expr, tail)) = after.split_once("}}") else {
                    bail!("invalid variable template: unmatched '{{{{' in template {template:?}");
                };
                parts.push(Part::Expr(expr.trim().to_owned()));
                rest = tail;
            } else {
                let (literal, tail) = rest.split_at(rest.find("{{").unwrap_or(rest.len()));
                parts.push(Part::Lit(literal.to_owned()));
                rest = tail;
            }
        }
        Ok(Self { parts })
    }

    fn expressions(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(e) => Some(e.as_str()),
            Part::Lit(_) => None,
        })
    }

    /// Substitutes resolved application variables.
    pub fn render(&self, values: &HashMap<String, String>) -> anyhow::Result<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(l) => out.push_str(l),
                Part::Expr(e) => match values.get(e) {
                    Some(v) => out.push_str(v),
                    None => bail!("invalid variable name: {e}"),
                },
            }
        }
        Ok(out)
    }
}

/// Checks a variable name as Spin does (`spin_expressions::Key::validate`);
/// the error text is Spin's.
pub fn validate_key(key: &str) -> Result<(), String> {
    let reason = if key.is_empty() {
        Some("must not be empty".to_owned())
    } else if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        Some(format!("invalid character {c:?}. Variable names may contain only lower-case letters, numbers, and underscores."))
    } else if !key.as_bytes()[0].is_ascii_lowercase() {
        Some("must start with a lowercase ASCII letter".to_owned())
    } else if !key.as_bytes()[key.len() - 1].is_ascii_alphanumeric() {
        Some("must end with a lowercase ASCII letter or digit".to_owned())
    } else if key.contains("__") {
        Some("must not contain multiple consecutive underscores".to_owned())
    } else {
        None
    };
    match reason {
        Some(r) => Err(format!("{key:?}: {r}")),
        None => Ok(()),
    }
}

/// Where values come from, highest priority first (Spin's provider order).
pub struct Providers<'a> {
    /// `--variable name=value`, in command-line order (last wins).
    pub cli: &'a [(String, String)],
    /// Reads an environment variable.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Entries of `./.env`, consulted when the environment lacks the name.
    pub dotenv: &'a HashMap<String, String>,
}

impl Providers<'_> {
    fn lookup(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.cli.iter().rev().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        let env_key = format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase());
        (self.env)(&env_key).or_else(|| self.dotenv.get(&env_key).cloned())
    }
}

/// Reads `.env` in the working directory the way Spin's env provider does;
/// a missing file is no error.
pub fn load_dotenv() -> anyhow::Result<HashMap<String, String>> {
    let path = std::path::Path::new(".env");
    if !path.exists() {
        return Ok(HashMap::new());
    }
    dotenvy::from_path_iter(path)
        .context("cannot read .env")?
        .collect::<Result<HashMap<_, _>, _>>()
        .context("cannot parse .env")
}

/// Resolves every application variable; fails naming every required variable
/// no provider supplies.
pub fn resolve_app_variables(
    defs: &BTreeMap<String, VariableDef>,
    providers: &Providers<'_>,
) -> anyhow::Result<HashMap<String, String>> {
    let mut values = HashMap::new();
    let mut missing = Vec::new();
    for (name, def) in defs {
        validate_key(name).map_err(|e| anyhow::anyhow!("invalid variable name: {e}"))?;
        match providers.lookup(name).or_else(|| def.default.clone()) {
            Some(v) => {
                values.insert(name.clone(), v);
            }
            None => missing.push(name.as_str()),
        }
    }
    if !missing.is_empty() {
        let how: Vec<String> = missing
            .iter()
            .map(|n| {
                format!(
                    "--variable {n}=<value> or SPIN_VARIABLE_{}",
                    n.to_ascii_uppercase()
                )
            })
            .collect();
        bail!(
            "no provider resolved required variable(s): {missing:?}; supply {}",
            how.join(", ")
        );
    }
    Ok(values)
}

/// Checks every component's variable templates (names and references) and
/// renders them; the result maps component id to (variable, value).
pub fn resolve_component_variables(
    manifest: &Manifest,
    app_values: &HashMap<String, String>,
) -> anyhow::Result<HashMap<String, HashMap<String, String>>> {
    let mut out = HashMap::new();
    for (id, component) in &manifest.components {
        let mut vars = HashMap::new();
        for (name, template) in &component.variables {
            validate_key(name)
                .map_err(|e| anyhow::anyhow!("component {id:?}: invalid variable name: {e}"))?;
            let t = Template::parse(template).with_context(|| format!("component {id:?}"))?;
            check_references(&t, manifest)
                .with_context(|| format!("component {id:?} variable {name:?}"))?;
            vars.insert(name.clone(), t.render(app_values)?);
        }
        out.insert(id.clone(), vars);
    }
    Ok(out)
}

/// Every `{{ name }}` must be an application variable (Spin: "unknown variable").
pub fn check_references(t: &Template, manifest: &Manifest) -> anyhow::Result<()> {
    for e in t.expressions() {
        if !manifest.variables.contains_key(e) {
            bail!("invalid variable template: unknown variable {e:?}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
