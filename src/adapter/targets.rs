//! Target module selection with PEFT's rules (`tuners_utils.check_target_module_exists`).
//!
//! - `"all-linear"`: every linear layer of the decoder blocks (never the output head);
//! - a string: a regular expression that must match the whole module path
//!   (`re.fullmatch`), e.g. `".*\.(q|v)_proj"`;
//! - a list: a module matches when its path equals an entry or ends with `.` + entry.
//!
//! `layers` keeps only modules of the given decoder layers (PEFT's `layers_to_transform`).

use super::{AdapterError, Targets};

/// The decoder-layer index of a module path (`model.layers.N.…`).
pub fn layer_index(path: &str) -> Option<usize> {
    let rest = path.split(".layers.").nth(1)?;
    rest.split('.').next()?.parse().ok()
}

/// Selects the modules to adapt among `modules` (full paths, in model order).
pub fn select(
    modules: &[String],
    targets: &Targets,
    layers: Option<&[usize]>,
) -> Result<Vec<String>, AdapterError> {
    let matcher: Box<dyn Fn(&str) -> bool> = match targets {
        Targets::One(s) if s == "all-linear" => Box::new(|_| true),
        Targets::One(s) => {
            let re = regex::Regex::new(&format!("^(?:{s})$"))
                .map_err(|e| AdapterError::Option(format!("targets: bad regex {s:?}: {e}")))?;
            Box::new(move |p| re.is_match(p))
        }
        Targets::Many(list) => {
            if list.is_empty() {
                return Err(AdapterError::Option("targets: empty list".into()));
            }
            let list = list.clone();
            Box::new(move |p| list.iter().any(|t| p == t || p.ends_with(&format!(".{t}"))))
        }
    };
    let out: Vec<String> = modules
        .iter()
        .filter(|m| matcher(m))
        .filter(|m| match layers {
            Some(ls) => layer_index(m).is_some_and(|i| ls.contains(&i)),
            None => true,
        })
        .cloned()
        .collect();
    if out.is_empty() {
        let mut short: Vec<String> = modules
            .iter()
            .filter_map(|m| m.rsplit('.').next().map(String::from))
            .collect();
        short.sort();
        short.dedup();
        let example = modules.first().cloned().unwrap_or_default();
        let layers_note = match layers {
            Some(l) => format!(" in layers {l:?}"),
            None => String::new(),
        };
        return Err(AdapterError::NoTargets {
            targets: format!("{targets}{layers_note}"),
            available: format!("{} (full paths like '{example}')", short.join(", ")),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mods() -> Vec<String> {
        let mut v = Vec::new();
        for i in 0..2 {
            for m in ["self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"] {
                v.push(format!("model.layers.{i}.{m}"));
            }
        }
        v
    }

    #[test]
    fn list_regex_layers_and_errors() {
        let m = mods();
        let t = Targets::Many(vec!["q_proj".into(), "v_proj".into()]);
        assert_eq!(select(&m, &t, None).unwrap().len(), 4);
        assert_eq!(
            select(&m, &t, Some(&[1])).unwrap(),
            vec![
                "model.layers.1.self_attn.q_proj",
                "model.layers.1.self_attn.v_proj"
            ]
        );
        let re = Targets::One(r".*\.down_proj".into());
        assert_eq!(select(&m, &re, None).unwrap().len(), 2);
        // fullmatch: a partial regex matches nothing.
        let partial = Targets::One("down".into());
        let e = select(&m, &partial, None).unwrap_err().to_string();
        assert!(e.contains("down_proj") && e.contains("q_proj"), "{e}");
        assert_eq!(
            select(&m, &Targets::One("all-linear".into()), None)
                .unwrap()
                .len(),
            6
        );
        assert_eq!(layer_index("model.layers.12.mlp.up_proj"), Some(12));
    }
}
