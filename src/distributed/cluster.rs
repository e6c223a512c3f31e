//! The cluster file (docs/scale-out.md, \[SO30\]): which shards a cluster has,
//! and which node serves each of them from which directory. This module
//! reads and checks it; nothing else here knows its form.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::shard::Shard;

/// The only version of the cluster file's form.
const FORMAT: u32 = 1;
/// The only placement of accounts: FNV-1a 64 modulo the number of shards.
const HASH: &str = "fnv1a64-mod";

/// The file as it is written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterFile {
    format: u32,
    shards: u32,
    hash: String,
    /// Accepted, but not used yet: the time cut of \[SO5\] is not built.
    #[serde(default, rename = "complete_through")]
    _complete_through: Option<String>,
    nodes: Vec<NodeEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeEntry {
    name: String,
    url: String,
    shards: BTreeMap<String, PathBuf>,
}

/// A checked cluster file: every shard from 0 to N − 1 is served by
/// exactly one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    shard_count: u32,
    nodes: Vec<Node>,
}

/// One node of a cluster: a machine running `tally worker`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    name: String,
    url: url::Url,
    /// Each shard it serves, with its database directory.
    shards: Vec<(Shard, PathBuf)>,
}

impl Node {
    /// The node's name, as `tally worker --node` names it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where its worker listens.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// The shards it serves, each with its database directory.
    pub fn shards(&self) -> impl Iterator<Item = (Shard, &Path)> + '_ {
        self.shards
            .iter()
            .map(|(shard, dir)| (*shard, dir.as_path()))
    }
}

impl Cluster {
    /// Reads and checks the cluster file at `path`. A shard directory
    /// written as a relative path is taken relative to the file's folder.
    pub fn read(path: &Path) -> Result<Cluster> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Cluster::parse(&text, base)
            .map_err(|reason| Error::Invalid(format!("{}: {reason}", path.display())))
    }

    /// Checks the text of a cluster file; relative shard directories are
    /// taken relative to `base`. The error is a sentence without the file's
    /// name.
    fn parse(text: &str, base: &Path) -> std::result::Result<Cluster, String> {
        let file: ClusterFile =
            serde_json::from_str(text).map_err(|e| format!("not a cluster file: {e}"))?;
        if file.format != FORMAT {
            return Err(format!(
                "format {} is not known; this tally reads format {FORMAT}",
                file.format
            ));
        }
        if file.hash != HASH {
            return Err(format!(
                "hash {:?} is not known; the only one is {HASH:?}",
                file.hash
            ));
        }
        // The count's own checks (a power of two, not too many).
        Shard::new(0, file.shards).map_err(|e| e.to_string())?;
        let mut owner: BTreeMap<u32, String> = BTreeMap::new();
        let mut nodes = Vec::with_capacity(file.nodes.len());
        for entry in file.nodes {
            if nodes.iter().any(|n: &Node| n.name == entry.name) {
                return Err(format!("node {:?} is listed twice", entry.name));
            }
            let url = url::Url::parse(&entry.url)
                .map_err(|e| format!("node {:?}: url {:?}: {e}", entry.name, entry.url))?;
            let mut shards = Vec::with_capacity(entry.shards.len());
            for (key, dir) in entry.shards {
                let index: u32 = key
                    .parse()
                    .map_err(|_| format!("node {:?}: {key:?} is not a shard number", entry.name))?;
                let shard = Shard::new(index, file.shards)
                    .map_err(|e| format!("node {:?}: {e}", entry.name))?;
                if let Some(other) = owner.insert(index, entry.name.clone()) {
                    return Err(format!(
                        "shard {index} is listed twice, by node {other:?} and node {:?}",
                        entry.name
                    ));
                }
                shards.push((shard, base.join(dir)));
            }
            nodes.push(Node {
                name: entry.name,
                url,
                shards,
            });
        }
        if let Some(missing) = (0..file.shards).find(|s| !owner.contains_key(s)) {
            return Err(format!(
                "shard {missing} of {} is served by no node",
                file.shards
            ));
        }
        Ok(Cluster {
            shard_count: file.shards,
            nodes,
        })
    }

    /// How many shards the cluster has.
    pub fn shard_count(&self) -> u32 {
        self.shard_count
    }

    /// Its nodes, in the file's order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Result<&Node> {
        self.nodes.iter().find(|n| n.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
            Error::Invalid(format!(
                "the cluster has no node {name:?}; its nodes are {}",
                names.join(", ")
            ))
        })
    }

    /// The worker URL of every shard, in shard order.
    pub fn shard_urls(&self) -> Vec<url::Url> {
        let mut urls: BTreeMap<u32, url::Url> = BTreeMap::new();
        for node in &self.nodes {
            for (shard, _) in &node.shards {
                urls.insert(shard.index(), node.url.clone());
            }
        }
        // Every shard has exactly one node (checked when read).
        urls.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> std::result::Result<Cluster, String> {
        Cluster::parse(text, Path::new("/data"))
    }

    #[test]
    fn a_cluster_file_is_checked() {
        // [SO30]
        let good = r#"{"format": 1, "shards": 2, "hash": "fnv1a64-mod",
            "complete_through": "2026-12-05T03:00:00Z",
            "nodes": [
              {"name": "t01", "url": "http://127.0.0.1:7070", "shards": {"1": "s1"}},
              {"name": "t02", "url": "http://127.0.0.1:7071", "shards": {"0": "/abs/s0"}}
            ]}"#;
        let cluster = parse(good).unwrap();
        assert_eq!(cluster.shard_count(), 2);
        let urls: Vec<String> = cluster.shard_urls().iter().map(|u| u.to_string()).collect();
        assert_eq!(urls, ["http://127.0.0.1:7071/", "http://127.0.0.1:7070/"]);
        let t01: Vec<(u32, PathBuf)> = cluster
            .node("t01")
            .unwrap()
            .shards()
            .map(|(s, p)| (s.index(), p.to_path_buf()))
            .collect();
        assert_eq!(t01, [(1, PathBuf::from("/data/s1"))]);
        assert!(
            cluster
                .node("t03")
                .unwrap_err()
                .to_string()
                .contains("t01, t02")
        );

        let cases = [
            (
                good.replace(r#""1": "s1""#, r#""0": "s1""#),
                "shard 0 is listed twice",
            ),
            (good.replace(r#""1": "s1""#, r#""2": "s1""#), "shard 2 of 2"),
            (
                good.replace(r#""1": "s1""#, r#""x": "s1""#),
                "not a shard number",
            ),
            (
                good.replace(r#""shards": {"1": "s1"}"#, r#""shards": {}"#),
                "shard 1 of 2 is served by no node",
            ),
            (
                good.replace(r#""shards": 2"#, r#""shards": 3"#),
                "power of two",
            ),
            (good.replace("fnv1a64-mod", "crc32"), "hash"),
            (good.replace(r#""format": 1"#, r#""format": 2"#), "format 2"),
            (good.replace("t02", "t01"), "listed twice"),
            (good.replace("http://127.0.0.1:7070", "not a url"), "url"),
            (good.replace("\"nodes\"", "\"nodez\""), "not a cluster file"),
        ];
        for (text, expected) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        }
    }
}
