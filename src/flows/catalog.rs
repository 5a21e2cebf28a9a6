//! The flows the server runs, and every version a run may still be on.
//!
//! A flow's version is its name and the first 12 hex digits of its source's SHA-256
//! (`follow-up@3f2a…`): files read at start-up and flows posted to `POST /api/v1/flows` are
//! stored as versions, and the newest becomes the flow's current one. A run keeps the
//! version it started on, so a flow edited while runs wait changes only the runs started
//! after.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

use super::definition::{self, Flow};
use super::{Problem, check_flow};
use crate::cloud_api::template::Template;
use crate::store::{FlowVersion, Store, StoreError};
use crate::time::Millis;

/// A flow read and checked, with its version.
#[derive(Debug)]
pub struct Loaded {
    pub version: String,
    pub flow: Flow,
}

/// `name@` and the first 12 hex digits of the SHA-256 of `source`.
pub fn version_of(name: &str, source: &str) -> String {
    let digest = Sha256::digest(source.as_bytes());
    format!("{name}@{}", &hex::encode(digest)[..12])
}

/// Reads and checks `source`; the problems say what to change (with lines).
pub fn read(
    source: &str,
    default_name: &str,
    templates: Option<&[Template]>,
) -> Result<Flow, Vec<Problem>> {
    let flow = definition::parse(source, default_name).map_err(|e| vec![e.into()])?;
    let problems = check_flow(&flow, templates);
    if problems.is_empty() {
        Ok(flow)
    } else {
        Err(problems)
    }
}

/// The `*.toml` files of `dir`, sorted; none when it does not exist.
pub fn files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|f| f.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// The templates a flow's steps are checked against: the store's synced ones, the
/// configuration's `[[templates]]` and, when the sandbox stands in for the Cloud API, the
/// sandbox's.
pub async fn known_templates(
    store: &dyn Store,
    settings: &crate::config::Settings,
) -> Result<Vec<Template>, StoreError> {
    let mut templates = store.templates().await?;
    templates.extend(settings.templates.iter().cloned());
    if settings.api_base.is_none() {
        for sender in &settings.senders {
            templates.extend(crate::cloud_api::template::demo_templates(&sender.waba_id));
        }
    }
    Ok(templates)
}

/// Flows by version, parsed once.
#[derive(Clone)]
pub struct Catalog {
    store: Arc<dyn Store>,
    /// The `RINGBACK_FLOW_…` variables: an HTTP trigger's secret must be among them.
    env: Arc<Vec<(String, String)>>,
    versions: Arc<RwLock<HashMap<String, Arc<Loaded>>>>,
    /// The current version of each flow (enabled or not), as read at `.0`: a hook call looks
    /// its flow up here, not in the store.
    names: Arc<RwLock<Names>>,
}

/// When the names were read, and each flow's current version by name.
type Names = (Option<std::time::Instant>, HashMap<String, String>);

/// How long the names read from the store serve (a flow posted on another node is seen
/// within this).
const NAMES_FOR: std::time::Duration = std::time::Duration::from_secs(2);

impl Catalog {
    pub fn new(store: Arc<dyn Store>, env: Vec<(String, String)>) -> Catalog {
        Catalog {
            store,
            env: Arc::new(env),
            versions: Default::default(),
            names: Default::default(),
        }
    }

    /// Stores `source` as a version of its flow and makes it current (`origin`: its file, or
    /// `api`). Refused, with the problems, when it does not pass the check.
    pub async fn put(
        &self,
        source: &str,
        default_name: &str,
        origin: &str,
        templates: Option<&[Template]>,
        now: Millis,
    ) -> Result<Arc<Loaded>, PutError> {
        let flow = read(source, default_name, templates).map_err(PutError::Invalid)?;
        if let Some(var) = &flow.trigger.secret_env
            && !self.env.iter().any(|(k, v)| k == var && !v.is_empty())
        {
            return Err(PutError::Invalid(vec![Problem {
                line: Some(flow.trigger_line),
                step: None,
                message: format!(
                    "the environment variable {var} is not set: set it to the secret callers of \
                     POST /hooks/{} send (without it every call would be refused)",
                    flow.name
                ),
            }]));
        }
        let version = version_of(&flow.name, source);
        self.store
            .put_flow(
                &FlowVersion {
                    version: version.clone(),
                    name: flow.name.clone(),
                    source: source.to_string(),
                    origin: origin.to_string(),
                    created_at: now,
                },
                flow.enabled,
            )
            .await?;
        let loaded = Arc::new(Loaded { version, flow });
        self.remember(&loaded);
        self.names.write().unwrap_or_else(|p| p.into_inner()).0 = None;
        Ok(loaded)
    }

    /// The current version of flow `name`, enabled or not.
    pub async fn named(&self, name: &str) -> Result<Option<Arc<Loaded>>, StoreError> {
        let fresh = {
            let names = self.names.read().unwrap_or_else(|p| p.into_inner());
            names
                .0
                .filter(|at| at.elapsed() < NAMES_FOR)
                .map(|_| names.1.get(name).cloned())
        };
        let version = match fresh {
            Some(v) => v,
            None => {
                let rows = self.store.flows().await?;
                let map: HashMap<String, String> =
                    rows.into_iter().map(|r| (r.name, r.version)).collect();
                let v = map.get(name).cloned();
                *self.names.write().unwrap_or_else(|p| p.into_inner()) =
                    (Some(std::time::Instant::now()), map);
                v
            }
        };
        match version {
            Some(v) => self.version(&v).await,
            None => Ok(None),
        }
    }

    fn remember(&self, loaded: &Arc<Loaded>) {
        self.versions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(loaded.version.clone(), loaded.clone());
    }

    /// A version, from memory or the store; `None` when it is unknown or no longer reads
    /// (a version written by a newer Ringback).
    pub async fn version(&self, version: &str) -> Result<Option<Arc<Loaded>>, StoreError> {
        if let Some(l) = self
            .versions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(version)
        {
            return Ok(Some(l.clone()));
        }
        let Some(v) = self.store.flow_version(version).await? else {
            return Ok(None);
        };
        let Ok(flow) = definition::parse(&v.source, &v.name) else {
            return Ok(None);
        };
        let loaded = Arc::new(Loaded {
            version: v.version,
            flow,
        });
        self.remember(&loaded);
        Ok(Some(loaded))
    }

    /// The current version of every enabled flow.
    pub async fn current(&self) -> Result<Vec<Arc<Loaded>>, StoreError> {
        let mut out = Vec::new();
        for row in self.store.flows().await? {
            if !row.enabled {
                continue;
            }
            if let Some(l) = self.version(&row.version).await? {
                out.push(l);
            }
        }
        Ok(out)
    }
}

/// Why a flow was not stored.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("the flow has problems")]
    Invalid(Vec<Problem>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Loads every flow file of `dir` into the store as the flows' current versions. Refuses
/// (with every problem, `FILE:LINE: step 'ID': …`) when any does not pass the check, so a
/// server never starts with a flow that would fail on its first run.
pub async fn load_dir(
    catalog: &Catalog,
    dir: &Path,
    templates: &[Template],
    now: Millis,
) -> Result<usize, String> {
    let files = files_in(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut problems = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match catalog
            .put(
                &source,
                &stem,
                &file.display().to_string(),
                Some(templates),
                now,
            )
            .await
        {
            Ok(_) => {}
            Err(PutError::Invalid(ps)) => {
                problems.extend(ps.iter().map(|p| located(file, p)));
            }
            Err(PutError::Store(e)) => return Err(e.to_string()),
        }
    }
    if problems.is_empty() {
        Ok(files.len())
    } else {
        Err(format!(
            "flow files have problems (fix them, or move the file out of flows.dir):\n{}",
            problems.join("\n")
        ))
    }
}

/// `FILE:LINE: step 'ID': message`, as compilers print it (editors jump to it).
pub fn located(file: &Path, p: &Problem) -> String {
    let mut out = file.display().to_string();
    if let Some(line) = p.line {
        out.push_str(&format!(":{line}"));
    }
    out.push_str(": ");
    if let Some(step) = &p.step {
        out.push_str(&format!("step '{step}': "));
    }
    out.push_str(&p.message);
    out
}
