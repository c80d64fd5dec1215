//! Lead form answers, as the platforms return them, mapped to a lead's standard fields (name,
//! email, phone, company, job title); every other answer is kept as custom data.
//!
//! - Meta Graph `GET /{leadgen_id}`: `{"id", "created_time", "field_data":[{"name","values":[..]}]}`.
//! - LinkedIn `GET /leadFormResponses/{id}`: `{"formResponse":{"answers":[{"questionId",
//!   "answerDetails":{"textQuestionAnswer":{"answer"}}}]}}`, with the question ids mapped by the
//!   form (`GET /leadForms/{id}`: `{"content":{"questions":[{"questionId","name","predefinedField"}]}}`).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::leads::{normalize_email, normalize_phone, LeadInput};
use crate::platforms::{id_of, text_of};
use crate::types::{Platform, Source};

/// The answers of one form submission.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FormAnswers {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    /// Every other answer, keyed by the form's field name.
    pub custom: BTreeMap<String, Value>,
}

/// What a form submission makes of a lead: the input to match or create it with, and every answer
/// as the touchpoint keeps it (`form_answers`).
#[derive(Debug, Clone, PartialEq)]
pub struct FormLead {
    pub input: LeadInput,
    pub answers: Value,
}

/// The lead a submission on `platform` describes, with `detail` (form, ad, campaign) as its source
/// detail. An email or phone that does not normalize is not a contact of the lead: it stays among
/// the answers only.
pub fn form_lead(
    answers: &FormAnswers,
    platform: Platform,
    detail: Map<String, Value>,
) -> FormLead {
    let mut input = LeadInput::new(Source::of_platform(platform));
    let mut extra: Map<String, Value> = answers.custom.clone().into_iter().collect();
    input.first_name = answers.first_name.clone();
    input.last_name = answers.last_name.clone();
    input.company = answers.company.clone();
    input.title = answers.title.clone();
    match answers.email.as_deref().map(normalize_email) {
        Some(Ok(_)) => input.email = answers.email.clone(),
        Some(Err(_)) => {
            extra.insert("email".into(), json!(answers.email));
        }
        None => {}
    }
    match answers.phone.as_deref().map(normalize_phone) {
        Some(Ok(_)) => input.phone = answers.phone.clone(),
        Some(Err(_)) => {
            extra.insert("phone_number".into(), json!(answers.phone));
        }
        None => {}
    }
    input.source_detail = detail;
    let mut all = Map::new();
    for (key, value) in [
        ("first_name", &answers.first_name),
        ("last_name", &answers.last_name),
        ("email", &answers.email),
        ("phone_number", &answers.phone),
        ("company_name", &answers.company),
        ("job_title", &answers.title),
    ] {
        if let Some(value) = value {
            all.insert(key.into(), json!(value));
        }
    }
    all.extend(extra);
    FormLead {
        input,
        answers: Value::Object(all),
    }
}

/// The standard lead field a form field name means, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standard {
    FullName,
    FirstName,
    LastName,
    Email,
    Phone,
    Company,
    Title,
}

/// Recognises Meta's standard field names and LinkedIn's predefined fields (and their common
/// spellings: `FIRST_NAME`, `firstName`, `first name`, ...).
fn standard(name: &str) -> Option<Standard> {
    let key: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    Some(match key.as_str() {
        "fullname" | "name" => Standard::FullName,
        "firstname" | "givenname" => Standard::FirstName,
        "lastname" | "familyname" | "surname" => Standard::LastName,
        "email" | "emailaddress" | "workemail" => Standard::Email,
        "phone" | "phonenumber" | "workphonenumber" | "mobilephonenumber" => Standard::Phone,
        "company" | "companyname" => Standard::Company,
        "jobtitle" | "title" => Standard::Title,
        _ => return None,
    })
}

impl FormAnswers {
    fn set(&mut self, name: &str, value: Value) {
        let text = match &value {
            Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        match (standard(name), text) {
            (Some(Standard::FullName), Some(full)) => {
                let mut parts = full.splitn(2, char::is_whitespace);
                let first = parts.next().map(str::to_string);
                let last = parts
                    .next()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty());
                self.first_name = self.first_name.take().or(first);
                self.last_name = self.last_name.take().or(last);
            }
            (Some(Standard::FirstName), Some(v)) => self.first_name = Some(v),
            (Some(Standard::LastName), Some(v)) => self.last_name = Some(v),
            (Some(Standard::Email), Some(v)) => self.email = self.email.take().or(Some(v)),
            (Some(Standard::Phone), Some(v)) => self.phone = self.phone.take().or(Some(v)),
            (Some(Standard::Company), Some(v)) => self.company = Some(v),
            (Some(Standard::Title), Some(v)) => self.title = Some(v),
            _ => {
                if !value.is_null() {
                    self.custom.insert(name.to_string(), value);
                }
            }
        }
    }
}

/// Maps Graph `field_data` (`[{name, values:[...]}]`); single values become scalars, multiple
/// values (checkboxes) stay a list.
pub fn from_meta_field_data(lead: &Value) -> FormAnswers {
    let mut answers = FormAnswers::default();
    let fields = lead
        .get("field_data")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for field in fields {
        let Some(name) = text_of(field.get("name")) else {
            continue;
        };
        let value = match field.get("values") {
            Some(Value::Array(values)) if values.len() == 1 => values[0].clone(),
            Some(Value::Array(values)) if values.is_empty() => continue,
            Some(other) => other.clone(),
            None => continue,
        };
        answers.set(&name, value);
    }
    answers
}

/// Maps a LinkedIn lead form response, using the form's questions to name each answer
/// (`predefinedField` first, then `name`, else `question_<id>`).
pub fn from_linkedin_response(response: &Value, form: Option<&Value>) -> FormAnswers {
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let questions = form
        .and_then(|f| f.get("content").unwrap_or(f).get("questions"))
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for question in questions {
        if let Some(id) = id_of(question.get("questionId")) {
            let name = text_of(question.get("predefinedField"))
                .or_else(|| text_of(question.get("name")))
                .unwrap_or_else(|| format!("question_{id}"));
            names.insert(id, name);
        }
    }
    let mut answers = FormAnswers::default();
    let list = response
        .get("formResponse")
        .and_then(|r| r.get("answers"))
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for answer in list {
        let id = id_of(answer.get("questionId")).unwrap_or_default();
        let name = names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("question_{id}"));
        let details = answer.get("answerDetails").unwrap_or(&Value::Null);
        let value = if let Some(text) = details
            .get("textQuestionAnswer")
            .and_then(|t| t.get("answer"))
        {
            text.clone()
        } else if let Some(choice) = details.get("multipleChoiceAnswer") {
            choice.get("options").cloned().unwrap_or(Value::Null)
        } else {
            details.clone()
        };
        answers.set(&name, value);
    }
    answers
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn meta_standard_fields_and_custom_answers() {
        let lead = json!({
            "id": "444", "created_time": "2025-11-24T16:00:00+0000",
            "field_data": [
                {"name": "full_name", "values": ["Ada  Lovelace"]},
                {"name": "email", "values": ["ada@example.com"]},
                {"name": "phone_number", "values": ["+44 20 7946 0000"]},
                {"name": "company_name", "values": ["Analytical Engines"]},
                {"name": "job_title", "values": ["Countess"]},
                {"name": "budget", "values": ["10k-50k"]},
                {"name": "interests", "values": ["a", "b"]},
                {"name": "empty", "values": []},
                {"values": ["nameless"]}
            ]
        });
        let answers = from_meta_field_data(&lead);
        assert_eq!(answers.first_name.as_deref(), Some("Ada"));
        assert_eq!(answers.last_name.as_deref(), Some("Lovelace"));
        assert_eq!(answers.email.as_deref(), Some("ada@example.com"));
        assert_eq!(answers.phone.as_deref(), Some("+44 20 7946 0000"));
        assert_eq!(answers.company.as_deref(), Some("Analytical Engines"));
        assert_eq!(answers.title.as_deref(), Some("Countess"));
        assert_eq!(answers.custom["budget"], json!("10k-50k"));
        assert_eq!(answers.custom["interests"], json!(["a", "b"]));
        assert_eq!(answers.custom.len(), 2);
    }

    #[test]
    fn explicit_first_and_last_names_win_over_full_name() {
        let lead = json!({"field_data": [
            {"name": "first_name", "values": ["Grace"]},
            {"name": "last_name", "values": ["Hopper"]},
            {"name": "full_name", "values": ["G. M. Hopper"]}
        ]});
        let answers = from_meta_field_data(&lead);
        assert_eq!(answers.first_name.as_deref(), Some("Grace"));
        assert_eq!(answers.last_name.as_deref(), Some("Hopper"));
    }

    #[test]
    fn missing_field_data_is_empty() {
        assert_eq!(
            from_meta_field_data(&json!({"id": "1"})),
            FormAnswers::default()
        );
    }

    #[test]
    fn linkedin_answers_are_named_by_the_form() {
        let response = json!({
            "id": "abc", "submittedAt": 1764000000000u64,
            "formResponse": {"answers": [
                {"questionId": 1, "answerDetails": {"textQuestionAnswer": {"answer": "Linus"}}},
                {"questionId": 2, "answerDetails": {"textQuestionAnswer": {"answer": "Torvalds"}}},
                {"questionId": 3, "answerDetails": {"textQuestionAnswer": {"answer": "linus@example.org"}}},
                {"questionId": 4, "answerDetails": {"textQuestionAnswer": {"answer": "Kernel Inc"}}},
                {"questionId": 5, "answerDetails": {"textQuestionAnswer": {"answer": "Maintainer"}}},
                {"questionId": 6, "answerDetails": {"multipleChoiceAnswer": {"options": [2]}}},
                {"questionId": 9, "answerDetails": {"textQuestionAnswer": {"answer": "unmapped"}}}
            ]}
        });
        let form = json!({"id": 77, "content": {"questions": [
            {"questionId": 1, "name": "firstName", "predefinedField": "FIRST_NAME"},
            {"questionId": 2, "name": "lastName", "predefinedField": "LAST_NAME"},
            {"questionId": 3, "name": "email", "predefinedField": "EMAIL"},
            {"questionId": 4, "name": "company", "predefinedField": "COMPANY_NAME"},
            {"questionId": 5, "name": "title", "predefinedField": "JOB_TITLE"},
            {"questionId": 6, "name": "teamSize"}
        ]}});
        let answers = from_linkedin_response(&response, Some(&form));
        assert_eq!(answers.first_name.as_deref(), Some("Linus"));
        assert_eq!(answers.last_name.as_deref(), Some("Torvalds"));
        assert_eq!(answers.email.as_deref(), Some("linus@example.org"));
        assert_eq!(answers.company.as_deref(), Some("Kernel Inc"));
        assert_eq!(answers.title.as_deref(), Some("Maintainer"));
        assert_eq!(answers.custom["teamSize"], json!([2]));
        assert_eq!(answers.custom["question_9"], json!("unmapped"));
    }

    #[test]
    fn linkedin_answers_without_a_form_keep_their_question_ids() {
        let response = json!({"formResponse": {"answers": [
            {"questionId": 1, "answerDetails": {"textQuestionAnswer": {"answer": "x"}}}
        ]}});
        let answers = from_linkedin_response(&response, None);
        assert_eq!(answers.custom["question_1"], json!("x"));
    }

    #[test]
    fn a_submission_becomes_a_lead_input_and_its_answers() {
        let answers = FormAnswers {
            first_name: Some("Ada".into()),
            email: Some("ADA@Example.com".into()),
            phone: Some("not a phone".into()),
            custom: [("budget".to_string(), json!("10k"))].into(),
            ..FormAnswers::default()
        };
        let detail: Map<String, Value> =
            [("form_id".to_string(), json!("f1"))].into_iter().collect();
        let lead = form_lead(&answers, Platform::Linkedin, detail.clone());
        assert_eq!(lead.input.source, Source::Linkedin);
        assert_eq!(lead.input.first_name.as_deref(), Some("Ada"));
        assert_eq!(lead.input.email.as_deref(), Some("ADA@Example.com"));
        // An unusable phone is no contact, but its answer is kept.
        assert_eq!(lead.input.phone, None);
        assert_eq!(lead.input.source_detail, detail);
        assert_eq!(
            lead.answers,
            json!({"first_name": "Ada", "email": "ADA@Example.com", "phone_number": "not a phone", "budget": "10k"})
        );
    }
}
