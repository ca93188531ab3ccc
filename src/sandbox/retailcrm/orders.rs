//! RetailCRM sandbox answers: products, groups, properties, orders, history, modules.

use super::*;

impl RetailCrmState {
    pub(super) fn products_answer(&self, query: &Params) -> Answer {
        let (page, limit) = page_params(query)?;
        let site_ok = self.sites_match(query);
        let products: Vec<&SandboxProduct> = self.products.iter().filter(|_| site_ok).collect();
        let (items, pagination) = paginate(&products, page, limit);
        let list: Vec<Value> = items.iter().map(|p| self.product_json(p)).collect();
        ok(json!({ "pagination": pagination, "products": list }))
    }

    pub(super) fn product_json(&self, p: &SandboxProduct) -> Value {
        let offers: Vec<&SandboxOffer> = self
            .offers
            .iter()
            .filter(|o| o.product_id == p.id)
            .collect();
        let prices: Vec<i64> = offers.iter().map(|o| o.price_kop).collect();
        let offer_list: Vec<Value> = offers
            .iter()
            .map(|o| {
                let mut v = json!({"id": o.id, "name": o.name, "price": money(o.price_kop),
                    "quantity": o.total(), "active": o.active, "properties": [],
                    "prices": [{"priceType": "base", "price": money(o.price_kop), "ordering": 991}]});
                if let Some(e) = &o.external_id {
                    v["externalId"] = json!(e);
                    v["article"] = json!(e);
                }
                if let Some(x) = &o.xml_id {
                    v["xmlId"] = json!(x);
                }
                if let Some(pp) = o.purchase_price_kop {
                    v["purchasePrice"] = json!(money(pp));
                }
                v
            })
            .collect();
        let groups: Vec<Value> = p.group_ids.iter().map(|g| json!({ "id": g })).collect();
        json!({"id": p.id, "name": p.name, "active": p.active,
            "minPrice": money(prices.iter().copied().min().unwrap_or(0)),
            "maxPrice": money(prices.iter().copied().max().unwrap_or(0)),
            "quantity": offers.iter().map(|o| o.total()).sum::<f64>(),
            "groups": groups, "offers": offer_list, "properties": []})
    }

    pub(super) fn groups_answer(&self, query: &Params) -> Answer {
        let (page, limit) = page_params(query)?;
        let (items, pagination) = paginate(&self.groups, page, limit);
        let list: Vec<Value> = items
            .iter()
            .map(|g| {
                let mut v = json!({"id": g.id, "site": self.site, "name": g.name, "active": true});
                if let Some(parent) = g.parent_id {
                    v["parentId"] = json!(parent);
                }
                v
            })
            .collect();
        ok(json!({ "pagination": pagination, "productGroup": list }))
    }

    pub(super) fn properties_answer(&self, query: &Params) -> Answer {
        let (page, limit) = page_params(query)?;
        let (items, pagination) = paginate(&self.properties, page, limit);
        let list: Vec<Value> = items
            .iter()
            .map(|(code, name)| json!({"code": code, "name": name, "sites": [self.site], "groups": []}))
            .collect();
        ok(json!({ "pagination": pagination, "properties": list }))
    }

    pub(super) fn order_json(&self, o: &SandboxOrder) -> Value {
        let items: Vec<Value> = o
            .items
            .iter()
            .map(|item| {
                let offer = self.offers.iter().find(|of| of.id == item.offer_id);
                let mut offer_json = json!({ "id": item.offer_id });
                if let Some(of) = offer {
                    offer_json["name"] = json!(of.name);
                    if let Some(e) = &of.external_id {
                        offer_json["externalId"] = json!(e);
                    }
                    if let Some(x) = &of.xml_id {
                        offer_json["xmlId"] = json!(x);
                    }
                }
                json!({"id": item.id, "initialPrice": money(item.price_kop), "discountTotal": 0.0,
                       "quantity": item.quantity, "status": "new", "offer": offer_json, "properties": []})
            })
            .collect();
        let delivery_data = match &o.track_number {
            Some(t) => json!({ "trackNumber": t }),
            None => json!([]),
        };
        let mut delivery = json!({"cost": money(o.delivery_cost_kop), "data": delivery_data});
        if let Some(code) = &o.delivery_code {
            delivery["code"] = json!(code);
        }
        let mut v = json!({"id": o.id, "externalId": o.external_id, "number": o.number,
            "site": o.site, "status": o.status, "orderType": "eshop-individual",
            "orderMethod": "shopping-cart", "createdAt": o.created_at, "shipped": o.shipped,
            "summ": money(o.total_kop() - o.delivery_cost_kop), "totalSumm": money(o.total_kop()),
            "items": items, "delivery": delivery, "payments": [], "customFields": []});
        if let Some(store) = &o.shipment_store {
            v["shipmentStore"] = json!(store);
        }
        if let Some(date) = o.shipment_date {
            v["shipmentDate"] = json!(date.format("%Y-%m-%d").to_string());
        }
        v
    }

    pub(super) fn orders_answer(&self, query: &Params) -> Answer {
        let (page, limit) = page_params(query)?;
        let ext = query.list("filter[externalIds]");
        let numbers = query.list("filter[numbers]");
        let ids = query.list("filter[ids]");
        let statuses = query.list("filter[extendedStatus]");
        let stores = query.list("filter[shipmentStores]");
        let sites = query.list("filter[sites]");
        let shipped = query.get("filter[shipped]").and_then(text_truthy);
        let selected: Vec<&SandboxOrder> = self
            .orders
            .iter()
            .filter(|o| ext.is_empty() || ext.contains(&o.external_id))
            .filter(|o| numbers.is_empty() || numbers.contains(&o.number))
            .filter(|o| ids.is_empty() || ids.contains(&o.id.to_string()))
            .filter(|o| statuses.is_empty() || statuses.contains(&o.status))
            .filter(|o| sites.is_empty() || sites.contains(&o.site))
            .filter(|o| {
                stores.is_empty()
                    || o.shipment_store
                        .as_ref()
                        .is_some_and(|s| stores.contains(s))
            })
            .filter(|o| shipped.is_none_or(|s| s == o.shipped))
            .collect();
        let (items, pagination) = paginate(&selected, page, limit);
        let list: Vec<Value> = items.iter().map(|o| self.order_json(o)).collect();
        ok(json!({ "pagination": pagination, "orders": list }))
    }

    pub(super) fn history_answer(&self, query: &Params) -> Answer {
        let (page, limit) = page_params(query)?;
        let since = match query.get("filter[sinceId]") {
            None => None,
            Some(text) => match text.trim().parse::<i64>() {
                Ok(id) => Some(id),
                Err(_) => {
                    return Err(bad_input(
                        "filter[sinceId]",
                        "This value should be of type integer.",
                    ))
                }
            },
        };
        let start = query.get("filter[startDate]").unwrap_or("");
        let selected: Vec<&SandboxHistory> = self
            .history
            .iter()
            .filter(|h| since.is_none_or(|s| h.id > s))
            .filter(|h| h.created_at.as_str() >= start)
            .collect();
        let (items, pagination) = paginate(&selected, page, limit);
        let list: Vec<Value> = items.iter().map(|h| self.history_json(h)).collect();
        ok(json!({"generatedAt": now_text(), "pagination": pagination, "history": list}))
    }

    pub(super) fn history_json(&self, h: &SandboxHistory) -> Value {
        let order = self.orders.iter().find(|o| o.id == h.order_id);
        let order_ref = match order {
            Some(o) => {
                json!({"id": o.id, "externalId": o.external_id, "number": o.number, "site": o.site})
            }
            None => json!({ "id": h.order_id }),
        };
        let mut v = json!({"id": h.id, "createdAt": h.created_at, "source": "api",
            "field": h.field, "oldValue": h.old_value, "newValue": h.new_value,
            "apiKey": {"current": true}, "order": order_ref});
        if h.created {
            v["created"] = json!(true);
        }
        v
    }

    pub(super) fn order_edit(&mut self, external_id: &str, form: &Params) -> Answer {
        self.check_site(form.get("site"))?;
        let by = form.get("by").unwrap_or("externalId");
        if by != "externalId" && by != "id" {
            return Err(bad_input(
                "by",
                "The value you selected is not a valid choice.",
            ));
        }
        let patch = match json_field(form, "order")? {
            Value::Object(m) => m,
            _ => return Err(bad_input("order", "The value must be an object.")),
        };
        let Some(index) = self.orders.iter().position(|o| match by {
            "id" => o.id.to_string() == external_id,
            _ => o.external_id == external_id,
        }) else {
            return Err(fail(404, "Not found", None));
        };
        let edit = self.validate_edit(&patch)?;
        self.apply_edit(index, edit);
        let order = &self.orders[index];
        ok(json!({"id": order.id, "order": self.order_json(order)}))
    }

    /// Validates an `orders/{externalId}/edit` patch field by field, the
    /// way RetailCRM does: every invalid field is reported at once, except
    /// `shipped` without a warehouse module, which refuses the whole edit.
    pub(super) fn validate_edit(&self, patch: &Map<String, Value>) -> Result<OrderEdit, Refusal> {
        let mut errors = Map::new();
        let mut edit = OrderEdit::default();
        if let Some(v) = patch.get("status") {
            let known = v
                .as_str()
                .filter(|code| self.statuses.iter().any(|s| s.code == *code));
            edit.status = checked(&mut errors, "status", known.map(str::to_string), || {
                json!(format!("Status {v} does not exist"))
            });
        }
        if let Some(v) = patch.get("shipped") {
            if !self.has_warehouse_module() {
                return Err(fail(
                    400,
                    "The \"shipped\" field is editable only when a warehouse system integration module is registered",
                    Some(json!({"shipped": "No active warehouse integration module"})),
                ));
            }
            edit.shipped = checked(&mut errors, "shipped", truthy(v), || {
                json!("This value should be of type bool.")
            });
        }
        if let Some(v) = patch.get("shipmentStore") {
            let known = v
                .as_str()
                .filter(|code| self.stores.iter().any(|s| s.code == *code));
            edit.shipment_store = checked(
                &mut errors,
                "shipmentStore",
                known.map(str::to_string),
                || json!(format!("Store {v} does not exist")),
            );
        }
        if let Some(v) = patch.get("shipmentDate") {
            let date = v
                .as_str()
                .and_then(|t| NaiveDate::parse_from_str(t, "%Y-%m-%d").ok());
            edit.shipment_date = checked(&mut errors, "shipmentDate", date, || {
                json!("This value is not a valid date (Y-m-d).")
            });
        }
        if let Some(v) = patch
            .get("delivery")
            .and_then(|d| d.pointer("/data/trackNumber"))
        {
            edit.track_number = checked(
                &mut errors,
                "delivery[data][trackNumber]",
                crate::lenient::value_to_id(v),
                || json!("This value should be a string."),
            );
        }
        if errors.is_empty() {
            Ok(edit)
        } else {
            Err(fail(
                400,
                "Order is not loaded",
                Some(Value::Object(errors)),
            ))
        }
    }

    pub(super) fn apply_edit(&mut self, index: usize, edit: OrderEdit) {
        let before = self.orders[index].clone();
        let order_id = before.id;
        let mut changes: Vec<(&str, Value, Value)> = Vec::new();
        let order = &mut self.orders[index];
        if let Some(status) = edit.status.filter(|s| *s != before.status) {
            changes.push((
                "status",
                json!({"code": before.status}),
                json!({"code": status}),
            ));
            order.status = status;
        }
        if let Some(shipped) = edit.shipped.filter(|s| *s != before.shipped) {
            changes.push(("shipped", json!(before.shipped), json!(shipped)));
            order.shipped = shipped;
        }
        if let Some(store) = edit
            .shipment_store
            .filter(|s| Some(s) != before.shipment_store.as_ref())
        {
            let old = before
                .shipment_store
                .as_ref()
                .map_or(Value::Null, |s| json!({"code": s}));
            changes.push(("shipment_store", old, json!({"code": store})));
            order.shipment_store = Some(store);
        }
        if let Some(date) = edit
            .shipment_date
            .filter(|d| Some(*d) != before.shipment_date)
        {
            let old = before
                .shipment_date
                .map_or(Value::Null, |d| json!(d.format("%Y-%m-%d").to_string()));
            changes.push((
                "shipment_date",
                old,
                json!(date.format("%Y-%m-%d").to_string()),
            ));
            order.shipment_date = Some(date);
        }
        if let Some(track) = edit
            .track_number
            .filter(|t| Some(t) != before.track_number.as_ref())
        {
            let old = before
                .track_number
                .as_ref()
                .map_or(Value::Null, |t| json!(t));
            changes.push(("delivery_data.track_number", old, json!(track)));
            order.track_number = Some(track);
        }
        for (field, old, new) in changes {
            self.push_history(order_id, field, old, new, false);
        }
    }

    pub(super) fn module_get(&self, code: &str) -> Answer {
        match self.modules.get(code) {
            Some(m) => ok(json!({ "integrationModule": m })),
            None => Err(fail(404, "Not found", None)),
        }
    }

    pub(super) fn module_edit(&mut self, code: &str, form: &Params) -> Answer {
        let mut module = match json_field(form, "integrationModule")? {
            Value::Object(m) => m,
            _ => {
                return Err(bad_input(
                    "integrationModule",
                    "The value must be an object.",
                ))
            }
        };
        let mut errors = Map::new();
        for field in ["name", "baseUrl", "clientId"] {
            let present = module
                .get(field)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.trim().is_empty());
            if !present {
                errors.insert(field.into(), json!("This value should not be blank."));
            }
        }
        match module.get("code").and_then(Value::as_str) {
            Some(c) if c == code => {}
            Some(_) => {
                errors.insert(
                    "code".into(),
                    json!("The code does not match the code in the URL."),
                );
            }
            None => {
                module.insert("code".into(), json!(code));
            }
        }
        if let Some(ic) = module.get("integrationCode").and_then(Value::as_str) {
            if !code.starts_with(ic) {
                errors.insert(
                    "code".into(),
                    json!(format!("The code must start with \"{ic}\".")),
                );
            }
        }
        if self.strict.strict_modules {
            strict_module_errors(&module, &mut errors);
        }
        if let Some(actions) = module
            .get("integrations")
            .and_then(|i| i.get("store"))
            .and_then(|s| s.get("actions"))
        {
            for (i, action) in php_list(Some(actions)).iter().enumerate() {
                for field in ["code", "url"] {
                    if action.get(field).and_then(Value::as_str).is_none() {
                        errors.insert(
                            format!("integrations[store][actions][{i}][{field}]"),
                            json!("This value should not be blank."),
                        );
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(fail(
                400,
                "Errors in the entity format",
                Some(Value::Object(errors)),
            ));
        }
        self.modules.insert(code.to_string(), Value::Object(module));
        ok(json!({ "info": [] }))
    }
}

/// Keeps a field's parsed value, or records the field's error message.
fn checked<T>(
    errors: &mut Map<String, Value>,
    key: &str,
    parsed: Option<T>,
    message: impl FnOnce() -> Value,
) -> Option<T> {
    if parsed.is_none() {
        errors.insert(key.into(), message());
    }
    parsed
}
