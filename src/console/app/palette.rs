//! The `:` palette's commands (aliases and unique prefixes resolved by `views::resolve_command`).

use super::*;

impl App {
    /// Run a palette command; true to quit.
    pub fn run_command(&mut self, text: &str) -> bool {
        let text = text.trim();
        let (word, arg) = text.split_once(' ').unwrap_or((text, ""));
        let arg = arg.trim();
        let word = match views::resolve_command(word) {
            Ok(w) => w,
            Err(m) => {
                self.state.message = Some((m, true));
                return false;
            }
        };
        match word.as_str() {
            "" => {}
            "overview" | "o" => self.goto(Route::Overview),
            "stuck" => self.goto(Route::Stuck),
            "dlq" => self.goto(Route::Dlq),
            "review" => self.goto(Route::Review),
            "audit" => self.goto(Route::Audit),
            "outbound" => self.goto(Route::Outbound),
            "help" | "?" => self.push(Route::Help),
            "q" | "quit" | "q!" => return true,
            "call" => match arg.trim_start_matches('#').parse::<i64>() {
                Ok(id) => self.push(Route::Call(id)),
                Err(_) => {
                    self.state.message = Some((format!(":call needs a call id (a number), got {:?}", views::sanitize(arg)), true))
                }
            },
            "biz" | "business" => self.open_business(arg),
            "merge" => {
                let ids: Vec<i64> = arg
                    .split_whitespace()
                    .filter_map(|w| w.trim_start_matches('#').parse().ok())
                    .collect();
                match ids.as_slice() {
                    [temporary, into] => self.confirm(
                        Action::ReviewMerge,
                        format!("Merge temporary customer #{temporary} into #{into}?"),
                        vec!["Its calls, leads and appointments move to the existing customer in one transaction.".into()],
                        "Merge".into(),
                        OpRequest::Merge {
                            temporary: *temporary,
                            into: *into,
                        },
                    ),
                    _ => {
                        self.state.message = Some((
                            ":merge needs two customer ids: the temporary one, then the one to merge it into".into(),
                            true,
                        ))
                    }
                }
            }
            "customers" | "find" => match (self.state.route(), self.selected_review_call()) {
                (Route::Review, Some(c)) if !arg.is_empty() => {
                    if !self.refuse_unless(Action::ReviewLink) {
                        self.run(OpRequest::SearchCustomers {
                            call_id: c.id,
                            business_id: c.business_id,
                            text: arg.to_string(),
                        });
                    }
                }
                _ => {
                    self.state.message = Some((
                        ":customers <name, phone or email> searches the selected review item's business (in the review view)".into(),
                        true,
                    ))
                }
            },
            "link" => match (
                self.state.route(),
                arg.trim_start_matches('#').parse::<i64>(),
                self.selected_review_call(),
            ) {
                (Route::Review, Ok(customer_id), Some(c)) => self.confirm(
                    Action::ReviewLink,
                    format!("Link call {} to customer #{customer_id}?", c.id),
                    vec!["A customer not among the candidates (e.g. found with `callops review` or the CRM).".into()],
                    "Link".into(),
                    OpRequest::Link {
                        call_id: c.id,
                        customer_id,
                    },
                ),
                _ => {
                    self.state.message = Some((
                        ":link <customer id> links the selected review item (in the review view)".into(),
                        true,
                    ))
                }
            },
            other => {
                self.state.message = Some((
                    format!(
                        "unknown command :{} — try :overview :stuck :dlq :review :audit :call <id> :biz <name> :link <customer> :merge <temp> <into> :quit",
                        views::sanitize(other)
                    ),
                    true,
                ))
            }
        }
        false
    }

    /// `:biz NAME` — exact name, else the one name starting with it, else the one
    /// containing it; several candidates filter the overview instead.
    pub(super) fn open_business(&mut self, name: &str) {
        if name.is_empty() {
            self.state.message = Some((":biz needs a business name (Tab completes)".into(), true));
            return;
        }
        let q = name.to_lowercase();
        let names = &self.state.data.names;
        let find = |f: &dyn Fn(&str) -> bool| -> Vec<i64> {
            let mut v: Vec<i64> = names
                .iter()
                .filter(|(_, n)| f(&n.to_lowercase()))
                .map(|(id, _)| *id)
                .collect();
            v.sort();
            v
        };
        let exact = find(&|n| n == q);
        let hits = if !exact.is_empty() {
            exact
        } else {
            let pre = find(&|n| n.starts_with(&q));
            if !pre.is_empty() {
                pre
            } else {
                find(&|n| n.contains(&q))
            }
        };
        match hits.as_slice() {
            [id] => {
                self.goto(Route::Overview);
                self.push(Route::Business(*id));
            }
            [] if !names.is_empty() => {
                self.state.message = Some((
                    format!("no business matches {:?}", views::sanitize(name)),
                    true,
                ))
            }
            _ => {
                self.goto(Route::Overview);
                self.state.list_mut(ListId::Overview).filter = name.to_string();
                self.state.message = Some((
                    format!(
                        "{} businesses match {:?}: filtered the overview",
                        hits.len(),
                        views::sanitize(name)
                    ),
                    false,
                ));
            }
        }
    }
}
