//! Belebele (Bandarkar et al. 2024), as lm-evaluation-harness defines it
//! (`lm_eval/tasks/belebele/_default_template_yaml`, `belebele_<code>.yaml`).
//!
//! Data: Hugging Face `facebook/belebele`, one config per FLORES-200 code (122, e.g.
//! `urd_Arab`), split `test` only (900 questions each); rows `{link, question_number,
//! flores_passage, question, mc_answer1..mc_answer4, correct_answer_num: "1".."4", dialect, ds}`.
//! The hub's file layout `data/<code>.jsonl` is supported (split-less per-language files), and
//! so is a single file whose `dialect` column names the language. Languages may be given as the
//! FLORES code or as a common ISO 639-1 code (`ur` → `urd_Arab`, `zh` → `zho_Hans`).
//!
//! Prompts:
//! * `lm-eval`: `P: {passage}\nQ: {question.strip()}\nA: {a1}\nB: {a2}\nC: {a3}\nD: {a4}\nAnswer:`,
//!   choices `A`–`D` scored as `(query, " " + letter)`. Few-shot examples come from `test` like
//!   lm-eval, but drawn at random (lm-eval takes the first n).
//! * `alpaca`: English instruction, the same passage/question/options as input, choices `A`–`D`.
//!
//! Metrics: acc, acc_norm, acc_bytes (all equal for one-letter choices, as in lm-eval).

use super::{Doc, Gold, Kind, Lang, Prompted, Task};
use crate::eval::metrics::text::is_py_space;
use crate::eval::prompt::{alpaca_prompt, Family};
use crate::eval::rank_quant;
use crate::eval::EvalError;
use crate::value::{as_key, Row};

/// The 122 FLORES-200 codes of lm-eval's Belebele tasks.
const CODES: &str = "acm_Arab afr_Latn als_Latn amh_Ethi apc_Arab arb_Arab arb_Latn ars_Arab ary_Arab arz_Arab asm_Beng azj_Latn bam_Latn ben_Beng ben_Latn bod_Tibt bul_Cyrl cat_Latn ceb_Latn ces_Latn ckb_Arab dan_Latn deu_Latn ell_Grek eng_Latn est_Latn eus_Latn fin_Latn fra_Latn fuv_Latn gaz_Latn grn_Latn guj_Gujr hat_Latn hau_Latn heb_Hebr hin_Deva hin_Latn hrv_Latn hun_Latn hye_Armn ibo_Latn ilo_Latn ind_Latn isl_Latn ita_Latn jav_Latn jpn_Jpan kac_Latn kan_Knda kat_Geor kaz_Cyrl kea_Latn khk_Cyrl khm_Khmr kin_Latn kir_Cyrl kor_Hang lao_Laoo lin_Latn lit_Latn lug_Latn luo_Latn lvs_Latn mal_Mlym mar_Deva mkd_Cyrl mlt_Latn mri_Latn mya_Mymr nld_Latn nob_Latn npi_Deva npi_Latn nso_Latn nya_Latn ory_Orya pan_Guru pbt_Arab pes_Arab plt_Latn pol_Latn por_Latn ron_Latn rus_Cyrl shn_Mymr sin_Latn sin_Sinh slk_Latn slv_Latn sna_Latn snd_Arab som_Latn sot_Latn spa_Latn srp_Cyrl ssw_Latn sun_Latn swe_Latn swh_Latn tam_Taml tel_Telu tgk_Cyrl tgl_Latn tha_Thai tir_Ethi tsn_Latn tso_Latn tur_Latn ukr_Cyrl urd_Arab urd_Latn uzn_Latn vie_Latn war_Latn wol_Latn xho_Latn yor_Latn zho_Hans zho_Hant zsm_Latn zul_Latn";

/// ISO 639-1 (and a few other) codes accepted for the FLORES codes.
const ALIASES: &str = "af:afr_Latn sq:als_Latn am:amh_Ethi ar:arb_Arab hy:hye_Armn as:asm_Beng az:azj_Latn bm:bam_Latn eu:eus_Latn bn:ben_Beng bg:bul_Cyrl my:mya_Mymr ca:cat_Latn zh:zho_Hans zh-Hant:zho_Hant hr:hrv_Latn cs:ces_Latn da:dan_Latn nl:nld_Latn en:eng_Latn et:est_Latn fi:fin_Latn fr:fra_Latn ka:kat_Geor de:deu_Latn el:ell_Grek gn:grn_Latn gu:guj_Gujr ht:hat_Latn ha:hau_Latn he:heb_Hebr hi:hin_Deva hu:hun_Latn is:isl_Latn ig:ibo_Latn id:ind_Latn it:ita_Latn ja:jpn_Jpan jv:jav_Latn kn:kan_Knda kk:kaz_Cyrl km:khm_Khmr rw:kin_Latn ky:kir_Cyrl ko:kor_Hang lo:lao_Laoo ln:lin_Latn lt:lit_Latn lg:lug_Latn lv:lvs_Latn ml:mal_Mlym mr:mar_Deva mk:mkd_Cyrl mt:mlt_Latn mi:mri_Latn mn:khk_Cyrl ne:npi_Deva nb:nob_Latn ny:nya_Latn or:ory_Orya pa:pan_Guru ps:pbt_Arab fa:pes_Arab mg:plt_Latn pl:pol_Latn pt:por_Latn ro:ron_Latn ru:rus_Cyrl si:sin_Sinh sk:slk_Latn sl:slv_Latn sn:sna_Latn sd:snd_Arab so:som_Latn st:sot_Latn es:spa_Latn sr:srp_Cyrl ss:ssw_Latn su:sun_Latn sw:swh_Latn sv:swe_Latn tg:tgk_Cyrl tl:tgl_Latn ta:tam_Taml te:tel_Telu th:tha_Thai ti:tir_Ethi tn:tsn_Latn ts:tso_Latn tr:tur_Latn uk:ukr_Cyrl ur:urd_Arab uz:uzn_Latn vi:vie_Latn wo:wol_Latn xh:xho_Latn yo:yor_Latn ms:zsm_Latn zu:zul_Latn bo:bod_Tibt om:gaz_Latn";

const INSTRUCTION: &str = "Read the passage and answer the multiple-choice question about it. Respond with the letter of the correct answer (A, B, C or D).";

const LETTERS: [&str; 4] = ["A", "B", "C", "D"];

/// The Belebele task.
pub struct Belebele;

impl Task for Belebele {
    fn name(&self) -> &'static str {
        "belebele"
    }
    fn kind(&self) -> Kind {
        Kind::Choice
    }
    fn dataset(&self) -> &'static str {
        "facebook/belebele"
    }
    fn langs(&self) -> Vec<String> {
        CODES.split(' ').map(String::from).collect()
    }
    fn resolve_lang(&self, user: &str) -> Option<Lang> {
        if CODES.split(' ').any(|c| c == user) {
            return Some(Lang::simple(user));
        }
        ALIASES
            .split(' ')
            .filter_map(|p| p.split_once(':'))
            .find(|(a, _)| *a == user)
            .map(|(a, code)| Lang {
                label: a.to_string(),
                code: code.to_string(),
                subsets: vec![code.to_string(), a.to_string()],
            })
    }
    fn metrics(&self) -> &'static [&'static str] {
        &["acc", "acc_norm", "acc_bytes"]
    }
    fn families(&self) -> &'static [&'static str] {
        &["alpaca", "lm-eval", "rank_quant"]
    }
    fn default_split(&self) -> &'static str {
        "test"
    }
    fn default_shot_split(&self) -> &'static str {
        "test"
    }
    fn row_lang(&self, row: &Row) -> Option<String> {
        row.get("dialect")
            .or_else(|| row.get("lang"))
            .or_else(|| row.get("language"))
            .map(as_key)
    }
    fn prompt(&self, doc: &Doc, _lang: &Lang, family: Family) -> Result<Prompted, EvalError> {
        let passage = doc.str("flores_passage")?;
        let question = doc.str("question")?.trim_matches(is_py_space);
        let mut answers = Vec::with_capacity(4);
        for k in 1..=4 {
            answers.push(doc.str(&format!("mc_answer{k}"))?);
        }
        let num = doc.int("correct_answer_num")?;
        let gold = usize::try_from(num - 1)
            .ok()
            .filter(|&g| g < 4)
            .ok_or_else(|| {
                EvalError::Data(crate::data::DataError::Invalid {
                    func: "evaluate",
                    msg: format!(
                        "belebele {} row {}: correct_answer_num {num} is not 1..4",
                        doc.origin,
                        doc.index + 1
                    ),
                })
            })?;
        let options: String = LETTERS
            .iter()
            .zip(&answers)
            .map(|(l, a)| format!("\n{l}: {a}"))
            .collect();
        let frame = (family == Family::RankQuant).then(|| {
            // The fields as they are (the other families strip the question).
            let raw = doc.str("question").unwrap_or(question);
            rank_quant::belebele(
                passage,
                raw,
                [answers[0], answers[1], answers[2], answers[3]],
            )
        });
        let query = match family {
            Family::RankQuant => frame.as_ref().map(|f| f.render(&[])).unwrap_or_default(),
            Family::Alpaca => alpaca_prompt(
                INSTRUCTION,
                &format!("Passage: {passage}\nQuestion: {question}{options}"),
            ),
            _ => format!("P: {passage}\nQ: {question}{options}\nAnswer:"),
        };
        let choices: Vec<String> = LETTERS.iter().map(|l| l.to_string()).collect();
        let target = choices.get(gold).cloned().unwrap_or_default();
        Ok(Prompted {
            query,
            choices,
            target,
            gold: Gold::Choice(gold),
            frame,
        })
    }
}
