//! SQL for networks, endpoints and published ports.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::model::{
    Endpoint, EndpointRequest, EndpointState, NetworkConfig, NetworkRecord, PublishedPort,
};
use crate::error::EngineError;

fn q(what: &'static str) -> impl Fn(rusqlite::Error) -> EngineError {
    move |e| EngineError::db(what, e)
}

fn row_to_network(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn decode(raw: (String, String, String, String)) -> Result<NetworkRecord, EngineError> {
    let (id, name, created, config) = raw;
    let config: NetworkConfig = serde_json::from_str(&config)
        .map_err(|e| EngineError::Corrupt(format!("network {name}: {e}")))?;
    let created = chrono::DateTime::parse_from_rfc3339(&created)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| EngineError::Corrupt(format!("network {name}: created: {e}")))?;
    Ok(NetworkRecord {
        id,
        name,
        created,
        config,
    })
}

pub fn all(conn: &Connection) -> Result<Vec<NetworkRecord>, EngineError> {
    let mut stmt = conn
        .prepare("SELECT id, name, created, config FROM networks ORDER BY created, name")
        .map_err(q("listing networks"))?;
    let rows = stmt
        .query_map([], row_to_network)
        .map_err(q("listing networks"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(q("listing networks"))?;
    rows.into_iter().map(decode).collect()
}

/// The network `word` names: exact name, full id, or a unique id prefix.
pub fn find(conn: &Connection, word: &str) -> Result<Option<NetworkRecord>, EngineError> {
    let all = all(conn)?;
    if let Some(n) = all.iter().find(|n| n.name == word || n.id == word) {
        return Ok(Some(n.clone()));
    }
    let matches: Vec<&NetworkRecord> = all.iter().filter(|n| n.id.starts_with(word)).collect();
    match matches.len() {
        0 => Ok(None),
        1 => Ok(Some(matches[0].clone())),
        _ => Err(EngineError::InvalidArgument(format!(
            "network {word} is ambiguous ({} matches found based on ID prefix)",
            matches.len()
        ))),
    }
}

pub fn insert(tx: &Transaction<'_>, n: &NetworkRecord) -> Result<(), EngineError> {
    let config = serde_json::to_string(&n.config)
        .map_err(|e| EngineError::Corrupt(format!("encoding network {}: {e}", n.name)))?;
    tx.execute(
        "INSERT INTO networks (id, name, created, config) VALUES (?1, ?2, ?3, ?4)",
        params![n.id, n.name, n.created.to_rfc3339(), config],
    )
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            EngineError::Conflict(format!("network with name {} already exists", n.name))
        }
        e => EngineError::db("inserting a network", e),
    })?;
    Ok(())
}

pub fn delete(tx: &Transaction<'_>, id: &str) -> Result<(), EngineError> {
    tx.execute("DELETE FROM networks WHERE id = ?1", params![id])
        .map_err(q("deleting a network"))?;
    Ok(())
}

type EndpointRow = (String, String, i64, String, Option<String>);

fn endpoints_where(
    conn: &Connection,
    clause: &str,
    arg: &str,
) -> Result<Vec<Endpoint>, EngineError> {
    let sql = format!(
        "SELECT container_id, network_id, position, config, state FROM endpoints WHERE {clause} ORDER BY container_id, position"
    );
    let mut stmt = conn.prepare(&sql).map_err(q("listing endpoints"))?;
    let rows: Vec<EndpointRow> = stmt
        .query_map(params![arg], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .map_err(q("listing endpoints"))?
        .collect::<Result<_, _>>()
        .map_err(q("listing endpoints"))?;
    let networks = all(conn)?;
    let mut out = Vec::new();
    for (cid, nid, position, config, state) in rows {
        let Some(network) = networks.iter().find(|n| n.id == nid).cloned() else {
            continue;
        };
        let mut request: EndpointRequest = serde_json::from_str(&config)
            .map_err(|e| EngineError::Corrupt(format!("endpoint of {cid}: {e}")))?;
        request.network = network.name.clone();
        let state = match state {
            Some(s) => Some(
                serde_json::from_str::<EndpointState>(&s)
                    .map_err(|e| EngineError::Corrupt(format!("endpoint of {cid}: {e}")))?,
            ),
            None => None,
        };
        out.push(Endpoint {
            container_id: cid,
            network,
            position,
            request,
            state,
        });
    }
    Ok(out)
}

pub fn endpoints_of_container(conn: &Connection, id: &str) -> Result<Vec<Endpoint>, EngineError> {
    endpoints_where(conn, "container_id = ?1", id)
}

pub fn endpoints_of_network(conn: &Connection, id: &str) -> Result<Vec<Endpoint>, EngineError> {
    endpoints_where(conn, "network_id = ?1", id)
}

pub fn all_endpoints(conn: &Connection) -> Result<Vec<Endpoint>, EngineError> {
    endpoints_where(conn, "?1 = ?1", "")
}

pub fn insert_endpoint(
    tx: &Transaction<'_>,
    container_id: &str,
    network_id: &str,
    position: i64,
    req: &EndpointRequest,
) -> Result<(), EngineError> {
    let config = serde_json::to_string(req)
        .map_err(|e| EngineError::Corrupt(format!("encoding an endpoint: {e}")))?;
    tx.execute(
        "INSERT INTO endpoints (container_id, network_id, position, config) VALUES (?1, ?2, ?3, ?4)",
        params![container_id, network_id, position, config],
    )
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            EngineError::Conflict(format!(
                "endpoint with name {container_id} already exists in network {network_id}"
            ))
        }
        e => EngineError::db("inserting an endpoint", e),
    })?;
    Ok(())
}

pub fn delete_endpoint(
    tx: &Transaction<'_>,
    container_id: &str,
    network_id: &str,
) -> Result<(), EngineError> {
    tx.execute(
        "DELETE FROM endpoints WHERE container_id = ?1 AND network_id = ?2",
        params![container_id, network_id],
    )
    .map_err(q("deleting an endpoint"))?;
    Ok(())
}

/// Addresses taken on a network.
pub fn used_addresses(tx: &Transaction<'_>, network_id: &str) -> Result<Vec<String>, EngineError> {
    let mut stmt = tx
        .prepare("SELECT ip FROM endpoints WHERE network_id = ?1 AND ip IS NOT NULL")
        .map_err(q("reading addresses"))?;
    let rows = stmt
        .query_map(params![network_id], |r| r.get(0))
        .map_err(q("reading addresses"))?
        .collect::<Result<Vec<String>, _>>()
        .map_err(q("reading addresses"))?;
    Ok(rows)
}

pub fn set_endpoint_state(
    tx: &Transaction<'_>,
    container_id: &str,
    network_id: &str,
    state: Option<&EndpointState>,
) -> Result<(), EngineError> {
    let (ip, json) = match state {
        Some(s) => (
            Some(s.ip.clone()),
            Some(
                serde_json::to_string(s)
                    .map_err(|e| EngineError::Corrupt(format!("encoding an endpoint: {e}")))?,
            ),
        ),
        None => (None, None),
    };
    tx.execute(
        "UPDATE endpoints SET ip = ?3, state = ?4 WHERE container_id = ?1 AND network_id = ?2",
        params![container_id, network_id, ip, json],
    )
    .map_err(q("recording an endpoint"))?;
    Ok(())
}

pub fn published_ports(
    conn: &Connection,
    container_id: &str,
) -> Result<Vec<PublishedPort>, EngineError> {
    let raw: Option<String> = conn
        .query_row(
            "SELECT ports FROM published_ports WHERE container_id = ?1",
            params![container_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(q("reading published ports"))?;
    match raw {
        Some(s) => serde_json::from_str(&s)
            .map_err(|e| EngineError::Corrupt(format!("published ports of {container_id}: {e}"))),
        None => Ok(Vec::new()),
    }
}

pub fn all_published_ports(
    conn: &Connection,
) -> Result<Vec<(String, Vec<PublishedPort>)>, EngineError> {
    let mut stmt = conn
        .prepare("SELECT container_id, ports FROM published_ports")
        .map_err(q("reading published ports"))?;
    let rows: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(q("reading published ports"))?
        .collect::<Result<_, _>>()
        .map_err(q("reading published ports"))?;
    rows.into_iter()
        .map(|(id, s)| {
            serde_json::from_str(&s)
                .map(|p| (id.clone(), p))
                .map_err(|e| EngineError::Corrupt(format!("published ports of {id}: {e}")))
        })
        .collect()
}

pub fn set_published_ports(
    tx: &Transaction<'_>,
    container_id: &str,
    ports: Option<&[PublishedPort]>,
) -> Result<(), EngineError> {
    match ports {
        Some(p) => {
            let json = serde_json::to_string(p)
                .map_err(|e| EngineError::Corrupt(format!("encoding ports: {e}")))?;
            tx.execute(
                "INSERT OR REPLACE INTO published_ports (container_id, ports) VALUES (?1, ?2)",
                params![container_id, json],
            )
        }
        None => tx.execute(
            "DELETE FROM published_ports WHERE container_id = ?1",
            params![container_id],
        ),
    }
    .map_err(q("recording published ports"))?;
    Ok(())
}
