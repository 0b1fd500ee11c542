//! Lists: the selection as an item (kept across refreshes, sorts, searches and pages), the
//! searches as the refresher's queries (one source of truth for title, rows and bulk
//! scopes), review paging, and status messages that expire.

use super::*;

impl App {
    /// Keep the selection on the same item after the rows changed (refresh, sort, filter,
    /// page). If the item left, the nearest of its former neighbours still present is
    /// selected (else the row at the same position) and the status line says so.
    pub(super) fn reselect(&mut self) {
        let Some(id) = self.state.route().list() else {
            return;
        };
        if !views::list_loaded(&self.state, id) {
            return;
        }
        let keys = views::visible_keys(&self.state, id);
        let noun = item_noun(id);
        let l = self.state.list_mut(id);
        let pos = |k: Option<i64>| k.and_then(|k| keys.iter().position(|x| *x == k));
        let mut left = None;
        match pos(l.key) {
            Some(i) => l.selected = i,
            None => {
                left = l.key;
                l.selected = pos(l.around[1])
                    .or(pos(l.around[0]))
                    .unwrap_or(l.selected)
                    .min(keys.len().saturating_sub(1));
            }
        }
        Self::place(l, &keys);
        if let Some(old) = left {
            let now = match l.key {
                Some(k) => format!("; selected {noun} {k} instead"),
                None => String::new(),
            };
            self.state.message = Some((
                format!("{noun} {old} left the list (handled, changed or filtered out){now}"),
                false,
            ));
        }
    }

    /// Record the item at `l.selected` (and its neighbours) as the selection.
    pub(super) fn place(l: &mut views::ListState, keys: &[i64]) {
        l.key = keys.get(l.selected).copied();
        l.around = [
            l.selected.checked_sub(1).and_then(|i| keys.get(i).copied()),
            keys.get(l.selected + 1).copied(),
        ];
    }

    /// Select row `i` of list `id` (clamped) by identity.
    pub(super) fn select_row(&mut self, id: ListId, i: usize) {
        let keys = views::visible_keys(&self.state, id);
        let l = self.state.list_mut(id);
        l.selected = i.min(keys.len().saturating_sub(1));
        Self::place(l, &keys);
    }

    /// A list's search, committed (Enter) or cleared (Esc). The DLQ's must parse: a search
    /// that does not is refused and the one before stays, in the title and in the rows.
    pub(super) fn set_filter(&mut self, id: ListId, text: String) {
        let text = text.trim().to_string();
        if id == ListId::Dlq {
            if let Err(m) = dlq_filter(&text, &self.state.data.names, self.state.dlq_history) {
                self.state.message = Some((
                    format!(
                        "{m} — the search stays {}",
                        describe_filter(&self.queries.dlq_text)
                    ),
                    true,
                ));
                self.state.list_mut(id).filter = self.queries.dlq_text.clone();
                return;
            }
        }
        self.state.list_mut(id).filter = text;
        self.list_query_changed(id);
    }

    /// Search, sort or page changed: the database lists answer a new query (first page).
    pub(super) fn list_query_changed(&mut self, id: ListId) {
        if id == ListId::Review {
            self.state.review_offset = 0;
        }
        if matches!(id, ListId::Review | ListId::Dlq) {
            self.sync_queries();
        }
        self.reselect();
    }

    /// The lists' searches as the refresher's queries (the DLQ's is also the scope
    /// "everything matching"). Only searches that parse get here (see `set_filter`).
    pub(super) fn sync_queries(&mut self) {
        let text = self.state.list(ListId::Dlq).filter.trim().to_string();
        let history = self.state.dlq_history;
        match dlq_filter(&text, &self.state.data.names, history) {
            Ok(f) => {
                self.queries.dlq = f;
                self.queries.dlq_text = text;
                self.queries.dlq_history = history;
            }
            // Names not loaded yet (biz:…) or a search that stopped parsing: keep the last,
            // on screen too.
            Err(m) => {
                self.state.message = Some((m, true));
                self.state.list_mut(ListId::Dlq).filter = self.queries.dlq_text.clone();
                self.state.dlq_history = self.queries.dlq_history;
            }
        }
        self.queries.review = views::review::query(&self.state);
        if let Some(c) = &self.control {
            if let Ok(mut g) = c.queries.lock() {
                *g = self.queries.clone();
            }
            c.now.notify_one();
        }
    }

    /// Tell the refresher which overview rows are on screen (it asks the broker for their
    /// queues only); none while the order itself depends on queue figures.
    pub(super) fn sync_on_screen(&mut self) {
        let ids = if self.state.route() == Route::Overview {
            let l = self.state.list(ListId::Overview);
            let sort = views::overview::SORTS[l.sort % views::overview::SORTS.len()];
            let rows = views::list_rows_area(&self.state, self.area).map(|(_, r)| r.height);
            match (sort, rows) {
                ("backlog" | "oldest job", _) | (_, None) => None,
                (_, Some(h)) => Some(
                    views::overview::visible(&self.state)
                        .iter()
                        .skip(l.offset)
                        .take(h as usize)
                        .map(|b| b.id)
                        .collect(),
                ),
            }
        } else {
            None
        };
        if ids != self.queries.on_screen {
            self.queries.on_screen = ids;
            if let Some(c) = &self.control {
                if let Ok(mut g) = c.queries.lock() {
                    g.on_screen = self.queries.on_screen.clone();
                }
            }
        }
    }

    /// The searches the refresher runs (tests fetch with them as the live console does).
    pub fn queries(&self) -> Queries {
        self.queries.clone()
    }

    /// Moving past the last (first) row of a review page fetches the next (previous) page:
    /// the database pages the queue, nothing is capped. True when a page was turned.
    pub(super) fn review_turn_page(&mut self, to: i64, n: i64) -> bool {
        let Some(p) = views::review::page(&self.state) else {
            return false;
        };
        let limit = self.settings.list_limit.max(1) as i64;
        let offset = p.query.offset;
        let next = if to >= n && offset + n < p.total {
            offset + limit
        } else if to < 0 && offset > 0 {
            (offset - limit).max(0)
        } else {
            return false;
        };
        self.state.review_offset = next;
        let l = self.state.list_mut(ListId::Review);
        l.selected = if next > offset { 0 } else { limit as usize - 1 };
        l.key = None;
        l.around = [None, None];
        self.state.message = Some((
            format!("review items {}–{}…", next + 1, next + limit),
            false,
        ));
        self.sync_queries();
        true
    }

    /// The selected review item's transcript lines are fetched for it: when the selection
    /// moves, the refresher is told (and woken, so the evidence follows the cursor).
    pub(super) fn focus_review_item(&mut self) {
        if self.state.route() != Route::Review {
            return;
        }
        let key = self.selected_key(ListId::Review);
        if key != self.queries.review_focus {
            self.queries.review_focus = key;
            if let Some(c) = &self.control {
                if let Ok(mut g) = c.queries.lock() {
                    g.review_focus = key;
                }
                c.now.notify_one();
            }
        }
    }

    /// A status message goes away after a while, so it does not hide the counters line.
    pub(super) fn expire_message(&mut self, now: i64) {
        match (&self.state.message, &self.message_seen) {
            (None, _) => self.message_seen = None,
            (Some(m), Some((seen, since))) if m == seen => {
                let ttl = if m.1 { ERROR_MESSAGE_MS } else { MESSAGE_MS };
                if now - since > ttl {
                    self.state.message = None;
                    self.message_seen = None;
                }
            }
            (Some(m), _) => self.message_seen = Some((m.clone(), now)),
        }
    }
}
