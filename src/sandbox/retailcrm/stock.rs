//! RetailCRM sandbox answers: admission, stores, statuses, inventories and their upload.

use super::*;

impl RetailCrmState {
    // -- request handling ---------------------------------------------------

    /// Account, rate limit and key checks every request goes through.
    pub(super) fn admit(&self, headers: &HeaderMap, query: &Params) -> Result<(), Refusal> {
        if !self.account_exists {
            return Err(Refusal::AccountMissing);
        }
        if !self.rate.try_hit() {
            return Err(fail(503, "Rate limit exceeded", None));
        }
        let key = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .or_else(|| query.get("apiKey"));
        match key {
            Some(k) if self.api_key.matches(k) => Ok(()),
            _ => Err(fail(403, "Wrong \"apiKey\" value.", None)),
        }
    }

    /// A `site` parameter, when given, must name this account's site.
    pub(super) fn check_site(&self, site: Option<&str>) -> Result<(), Refusal> {
        match site {
            Some(s) if s != self.site => Err(fail(
                400,
                "Errors in the input parameters",
                Some(json!({ "site": format!("Site with code \"{s}\" not found") })),
            )),
            _ => Ok(()),
        }
    }

    pub(super) fn sites_match(&self, query: &Params) -> bool {
        let sites = query.list("filter[sites]");
        sites.is_empty() || sites.contains(&self.site)
    }

    pub(super) fn stores_answer(&self) -> Answer {
        let stores: Vec<Value> = self
            .stores
            .iter()
            .map(|s| {
                json!({"code": s.code, "name": s.name, "type": "store-type-warehouse",
                       "inventoryType": s.inventory_type, "active": s.active, "address": []})
            })
            .collect();
        ok(json!({ "stores": stores }))
    }

    pub(super) fn statuses_answer(&self) -> Answer {
        let statuses: Map<String, Value> = self
            .statuses
            .iter()
            .map(|s| {
                (
                    s.code.clone(),
                    json!({"name": s.name, "code": s.code, "active": true,
                           "ordering": s.ordering, "group": s.group}),
                )
            })
            .collect();
        ok(json!({ "statuses": statuses }))
    }

    pub(super) fn offer_json(&self, o: &SandboxOffer, details: bool) -> Value {
        let mut v = json!({"id": o.id, "site": self.site, "quantity": o.total()});
        if let Some(e) = &o.external_id {
            v["externalId"] = json!(e);
        }
        if let Some(x) = &o.xml_id {
            v["xmlId"] = json!(x);
        }
        if let Some(p) = o.purchase_price_kop {
            v["purchasePrice"] = json!(money(p));
        }
        if details {
            let stores: Vec<Value> = o
                .quantities
                .iter()
                .map(|(store, q)| {
                    let mut s = json!({"store": store, "quantity": q});
                    if let Some(p) = o.store_price(store) {
                        s["purchasePrice"] = json!(money(p));
                    }
                    s
                })
                .collect();
            v["stores"] = Value::Array(stores);
        }
        v
    }

    pub(super) fn inventories(&self, query: &Params) -> Answer {
        let (page, limit) = if self.strict.inventory_limit_250 {
            page_params_with(query, &[20, 50, 100, INVENTORY_LIMIT_250])?
        } else {
            page_params(query)?
        };
        let ext = self.sku_filter(query, "filter[offerExternalId]")?;
        let xml = self.sku_filter(query, "filter[offerXmlId]")?;
        let ids = query.list("filter[ids]");
        if !ids.is_empty() && !self.strict.inventory_ids_filter {
            return Err(bad_input("filter[ids]", "This field was not expected."));
        }
        let details = query.get("filter[details]").and_then(text_truthy) == Some(true);
        let offer_active = query.get("filter[offerActive]").and_then(text_truthy);
        let site_ok = self.sites_match(query);
        if site_ok && ext.is_empty() && xml.is_empty() && ids.is_empty() && offer_active.is_none() {
            // Unfiltered: page straight over the offers.
            let (items, pagination) = paginate_slice(&self.offers, page, limit);
            let offers: Vec<Value> = items.iter().map(|o| self.offer_json(o, details)).collect();
            return ok(json!({ "pagination": pagination, "offers": offers }));
        }
        // Filtered by keys: the candidates come from the index (a real CRM's
        // filtered read is an indexed query), in offer order.
        let mut positions: Vec<usize> = if !ids.is_empty() {
            ids.iter()
                .filter_map(|id| id.trim().parse::<i64>().ok())
                .filter_map(|id| self.offer_index.by_id.get(&id).copied())
                .collect()
        } else if !ext.is_empty() {
            ext.iter()
                .filter_map(|e| self.offer_index.by_external.get(e).copied())
                .chain(self.offer_index.shared.iter().copied())
                .collect()
        } else if !xml.is_empty() {
            xml.iter()
                .filter_map(|x| self.offer_index.by_xml.get(x).copied())
                .chain(self.offer_index.shared.iter().copied())
                .collect()
        } else {
            (0..self.offers.len()).collect()
        };
        positions.sort_unstable();
        positions.dedup();
        let selected: Vec<&SandboxOffer> = positions
            .into_iter()
            .map(|i| &self.offers[i])
            .filter(|_| site_ok)
            .filter(|o| ext.is_empty() || o.external_id.as_ref().is_some_and(|e| ext.contains(e)))
            .filter(|o| xml.is_empty() || o.xml_id.as_ref().is_some_and(|x| xml.contains(x)))
            .filter(|o| ids.is_empty() || ids.contains(&o.id.to_string()))
            .filter(|o| offer_active.is_none_or(|a| a == o.active))
            .collect();
        let (items, pagination) = paginate(&selected, page, limit);
        let offers: Vec<Value> = items.iter().map(|o| self.offer_json(o, details)).collect();
        ok(json!({ "pagination": pagination, "offers": offers }))
    }

    /// The values of a SKU filter under [`RetailCrmStrictness::inventory_sku_filter`].
    pub(super) fn sku_filter(&self, query: &Params, name: &str) -> Result<Vec<String>, Refusal> {
        let list = query.list(name);
        if !list.is_empty() && self.strict.inventory_sku_filter == SkuFilter::OneString {
            return Err(bad_input(name, "This value should be of type string."));
        }
        Ok(match query.get(name) {
            Some(one) => vec![one.to_string()],
            None => list,
        })
    }

    pub(super) fn upload(&mut self, form: &Params) -> Answer {
        self.check_site(form.get("site"))?;
        if !self.vanish_on_upload.is_empty() {
            // A manager deleted these offers between sverka's read and its upload.
            let gone = std::mem::take(&mut self.vanish_on_upload);
            self.offers.retain(|o| {
                !(o.external_id.as_ref().is_some_and(|e| gone.contains(e))
                    || o.xml_id.as_ref().is_some_and(|x| gone.contains(x)))
            });
            self.offer_index = OfferIndex::build(&self.offers);
        }
        let list = match json_field(form, "offers")? {
            Value::Array(list) => list,
            _ => return Err(bad_input("offers", "The value must be an array of offers.")),
        };
        if list.is_empty() {
            return Err(bad_input(
                "offers",
                "This collection should contain 1 element or more.",
            ));
        }
        if list.len() > MAX_UPLOAD {
            return Err(bad_input(
                "offers",
                &format!("This collection should contain {MAX_UPLOAD} elements or less."),
            ));
        }
        let mut errors = Map::new();
        let mut not_found = Vec::new();
        let mut changes: Vec<(usize, Vec<StoreChange>)> = Vec::new();
        for (i, entry) in list.iter().enumerate() {
            match self.validate_offer(i, entry) {
                Ok(OfferMatch::Found(index, stores)) => changes.push((index, stores)),
                Ok(OfferMatch::NotFound(reference)) => not_found.push(reference),
                Err((field, message)) => {
                    errors.insert(field, Value::String(message));
                }
            }
        }
        let processed = changes.len();
        for (index, stores) in changes {
            let offer = &mut self.offers[index];
            for change in stores {
                if let Some(q) = change.available {
                    offer.quantities.insert(change.code.clone(), q);
                }
                if let Some(p) = change.purchase_price_kop {
                    offer.store_prices.insert(change.code.clone(), p);
                }
            }
        }
        let body = json!({"processedOffersCount": processed, "notFoundOffers": not_found});
        if errors.is_empty() {
            return ok(body);
        }
        let (status, message) = if processed > 0 {
            (460, "Offers are uploaded partially")
        } else {
            (400, "Errors in the input parameters")
        };
        let mut answer = body;
        answer["success"] = json!(false);
        answer["errorMsg"] = json!(message);
        answer["errors"] = Value::Object(errors);
        Ok(respond(status, answer))
    }

    pub(super) fn validate_offer(
        &self,
        i: usize,
        entry: &Value,
    ) -> Result<OfferMatch, (String, String)> {
        let at = |field: &str| format!("offers[{i}]{field}");
        let Some(obj) = entry.as_object() else {
            return Err((at(""), "The offer must be an object.".into()));
        };
        let id = obj.get("id").and_then(crate::lenient::value_to_i64);
        let ext = obj.get("externalId").and_then(crate::lenient::value_to_id);
        let xml = obj.get("xmlId").and_then(crate::lenient::value_to_id);
        if id.is_none() && ext.is_none() && xml.is_none() {
            return Err((at(""), "One of id, externalId or xmlId is required.".into()));
        }
        if let Some(site) = obj.get("site").and_then(Value::as_str) {
            if site != self.site {
                return Err((at("[site]"), format!("Site with code \"{site}\" not found")));
            }
        }
        let index = match self.find_offer(id, ext, xml) {
            Ok(index) => index,
            Err(reference) => return Ok(OfferMatch::NotFound(reference)),
        };
        let stores = php_list(obj.get("stores"));
        let mut changes = Vec::with_capacity(stores.len());
        for (j, store) in stores.iter().enumerate() {
            let field = |name: &str| at(&format!("[stores][{j}][{name}]"));
            changes.push(self.validate_store(store, field)?);
        }
        Ok(OfferMatch::Found(index, changes))
    }

    /// Finds the offer one key names, the others agreeing with it; when none
    /// does, the reference the answer's `notFoundOffers` echoes back.
    fn find_offer(
        &self,
        id: Option<i64>,
        ext: Option<String>,
        xml: Option<String>,
    ) -> Result<usize, Value> {
        // One key finds the candidate; the others must agree with it.
        let candidate = match (id, &ext, &xml) {
            (Some(id), _, _) => self.offer_index.by_id.get(&id),
            (None, Some(e), _) => self.offer_index.by_external.get(e),
            (None, None, Some(x)) => self.offer_index.by_xml.get(x),
            (None, None, None) => None,
        };
        let found = candidate.copied().filter(|&i| {
            let o = &self.offers[i];
            ext.as_ref()
                .is_none_or(|e| o.external_id.as_ref() == Some(e))
                && xml.as_ref().is_none_or(|x| o.xml_id.as_ref() == Some(x))
        });
        found.ok_or_else(|| {
            let mut reference = Map::new();
            if let Some(e) = ext {
                reference.insert("externalId".into(), Value::String(e));
            }
            if let Some(x) = xml {
                reference.insert("xmlId".into(), Value::String(x));
            }
            if let Some(id) = id {
                reference.insert("id".into(), json!(id));
            }
            Value::Object(reference)
        })
    }

    /// Validates one `stores[]` entry of an offer: a known store code, a
    /// non-negative `available` (required when the strictness says so) and
    /// a non-negative `purchasePrice`. `field` names a field for the error.
    fn validate_store(
        &self,
        store: &Value,
        field: impl Fn(&str) -> String,
    ) -> Result<StoreChange, (String, String)> {
        let code = store.get("code").and_then(Value::as_str).unwrap_or("");
        if !self.stores.iter().any(|s| s.code == code) {
            return Err((
                field("code"),
                format!("Store with code \"{code}\" not found"),
            ));
        }
        let non_negative = |name: &str| -> Result<Option<f64>, (String, String)> {
            match store.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => match crate::lenient::value_to_f64(v) {
                    Some(q) if q >= 0.0 => Ok(Some(q)),
                    _ => Err((field(name), "This value should be a number >= 0.".into())),
                },
            }
        };
        let available = match store.get("available") {
            None | Some(Value::Null) if self.strict.upload_requires_available => {
                return Err((field("available"), "This value should not be blank.".into()))
            }
            _ => non_negative("available")?,
        };
        let purchase_price_kop = non_negative("purchasePrice")?.and_then(money_to_kop);
        Ok(StoreChange {
            code: code.to_string(),
            available,
            purchase_price_kop,
        })
    }
}
