//! Model and dataset cards: the YAML front matter of a repository's `README.md`.

use serde::Serialize;
use serde_json::Value;

/// The card fields modelyard indexes for filtering, plus the whole front matter as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CardData {
    pub license: Option<String>,
    pub tags: Vec<String>,
    pub pipeline_tag: Option<String>,
    pub library_name: Option<String>,
    pub datasets: Vec<String>,
    pub base_model: Vec<String>,
    /// `model-index` as written: self-reported results, never shown as verified.
    pub model_index: Option<Value>,
    /// The whole front matter, converted to JSON (the Hub's `cardData`).
    pub raw: Value,
}

/// A README whose front matter could not be read; the file is kept, the error is shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("card metadata: {0}")]
pub struct CardError(pub String);

/// Splits `---\n<yaml>\n---` off the top of a README and returns the YAML text and the body.
pub fn split_front_matter(text: &str) -> (Option<&str>, &str) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return (None, text);
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return (Some(&rest[..offset]), &rest[offset + line.len()..]);
        }
        offset += line.len();
    }
    (None, text)
}

/// Parses a README's front matter. No front matter is an empty card, not an error.
pub fn parse_card(text: &str) -> Result<CardData, CardError> {
    let (yaml, _) = split_front_matter(text);
    let Some(yaml) = yaml else {
        if text.starts_with("---") {
            return Err(CardError(
                "front matter starts with '---' but is never closed".into(),
            ));
        }
        return Ok(CardData::default());
    };
    let value: serde_yaml::Value =
        serde_yaml::from_str(yaml).map_err(|e| CardError(e.to_string()))?;
    let raw = match value {
        serde_yaml::Value::Null => return Ok(CardData::default()),
        serde_yaml::Value::Mapping(_) => {
            serde_json::to_value(&value).map_err(|e| CardError(e.to_string()))?
        }
        _ => {
            return Err(CardError(
                "front matter must be a mapping of keys to values".into(),
            ))
        }
    };
    Ok(CardData {
        license: string_field(&raw, "license")?,
        tags: list_field(&raw, "tags")?,
        pipeline_tag: string_field(&raw, "pipeline_tag")?
            .or(string_field(&raw, "task")?)
            .or(list_field(&raw, "task_categories")?.into_iter().next()),
        library_name: string_field(&raw, "library_name")?,
        datasets: list_field(&raw, "datasets")?,
        base_model: list_field(&raw, "base_model")?,
        model_index: raw.get("model-index").cloned(),
        raw,
    })
}

fn string_field(raw: &Value, key: &str) -> Result<Option<String>, CardError> {
    match raw.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(CardError(format!("`{key}` must be a string"))),
    }
}

/// A list field that may also be written as a single string.
fn list_field(raw: &Value, key: &str) -> Result<Vec<String>, CardError> {
    match raw.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(CardError(format!("`{key}` must be a list of strings"))),
            })
            .collect(),
        Some(_) => Err(CardError(format!("`{key}` must be a list of strings"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hub_fields() {
        let card = parse_card(
            "---\nlicense: mit\ntags: [vision, mnist]\npipeline_tag: image-classification\n\
             library_name: onnx\ndatasets: ylecun/mnist\nmodel-index:\n- name: m\n  results: []\n---\n# Hi\n",
        )
        .unwrap();
        assert_eq!(card.license.as_deref(), Some("mit"));
        assert_eq!(card.tags, ["vision", "mnist"]);
        assert_eq!(card.pipeline_tag.as_deref(), Some("image-classification"));
        assert_eq!(card.library_name.as_deref(), Some("onnx"));
        assert_eq!(card.datasets, ["ylecun/mnist"]);
        assert!(card.model_index.is_some());
    }

    #[test]
    fn no_front_matter_is_empty() {
        assert_eq!(parse_card("# just text\n").unwrap(), CardData::default());
    }

    #[test]
    fn malformed_is_an_error() {
        assert!(parse_card("---\nlicense: [unclosed\n---\n").is_err());
        assert!(parse_card("---\n- a\n- b\n---\n").is_err());
        assert!(parse_card("---\ntags: {a: 1}\n---\n").is_err());
        assert!(parse_card("---\nlicense: mit\n").is_err());
    }

    #[test]
    fn splits_body() {
        let (y, body) = split_front_matter("---\na: 1\n---\nbody\n");
        assert_eq!(y, Some("a: 1\n"));
        assert_eq!(body, "body\n");
    }
}
