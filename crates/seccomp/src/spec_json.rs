//! Validation of the raw `linux.seccomp` JSON object.
//!
//! oci-spec models actions, operators, architectures and flags as enums, so a
//! misspelt value makes serde fail with a message that names neither the
//! field nor the rule. [`parse_spec`] walks the JSON first and reports the
//! exact place (`syscalls[3].args[0]: unknown operator SCMP_CMP_FOO`).

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::SeccompError;

/// Parses the `linux.seccomp` object of a `config.json` into oci-spec's
/// [`LinuxSeccomp`], naming the offending field on any error.
pub fn parse_spec(value: &Value) -> Result<LinuxSeccomp, SeccompError> {
    let Value::Object(object) = value else {
        return Err(malformed("linux.seccomp", "an object"));
    };
    if let Some(action) = object.get("defaultAction") {
        check_enum::<LinuxSeccompAction>(action, "defaultAction", "action")?;
    }
    for (i, arch) in list(object.get("architectures"), "architectures")?
        .iter()
        .enumerate()
    {
        check_enum::<Arch>(arch, &format!("architectures[{i}]"), "architecture")?;
    }
    for (i, flag) in list(object.get("flags"), "flags")?.iter().enumerate() {
        check_enum::<LinuxSeccompFilterFlag>(flag, &format!("flags[{i}]"), "flag")?;
    }
    for (i, rule) in list(object.get("syscalls"), "syscalls")?.iter().enumerate() {
        let field = format!("syscalls[{i}]");
        let Value::Object(rule) = rule else {
            return Err(malformed(&field, "an object"));
        };
        if let Some(action) = rule.get("action") {
            check_enum::<LinuxSeccompAction>(action, &field, "action")?;
        }
        for (j, arg) in list(rule.get("args"), &format!("{field}.args"))?
            .iter()
            .enumerate()
        {
            let field = format!("{field}.args[{j}]");
            let Value::Object(arg) = arg else {
                return Err(malformed(&field, "an object"));
            };
            if let Some(op) = arg.get("op") {
                check_enum::<LinuxSeccompOperator>(op, &field, "operator")?;
            }
        }
    }
    serde_json::from_value(value.clone()).map_err(|source| SeccompError::Malformed {
        field: "linux.seccomp".to_string(),
        source,
    })
}

fn list<'a>(value: Option<&'a Value>, field: &str) -> Result<&'a [Value], SeccompError> {
    match value {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(malformed(field, "an array")),
    }
}

fn check_enum<T: DeserializeOwned>(
    value: &Value,
    field: &str,
    kind: &'static str,
) -> Result<(), SeccompError> {
    let Value::String(text) = value else {
        return Err(malformed(field, "a string"));
    };
    match serde_json::from_value::<T>(value.clone()) {
        Ok(_) => Ok(()),
        Err(_) => Err(SeccompError::UnknownValue {
            field: field.to_string(),
            kind,
            value: text.clone(),
        }),
    }
}

fn malformed(field: &str, expected: &str) -> SeccompError {
    SeccompError::InvalidValue {
        field: field.to_string(),
        reason: format!("expected {expected}"),
    }
}
