//! Seeding and inspection of the RetailCRM sandbox account.

use super::*;

impl RetailCrmState {
    /// An account with key `api_key`, site `site`, the default statuses and one store `main`.
    pub fn new(api_key: &str, site: &str) -> Self {
        let mut state = RetailCrmState {
            api_key: Secret::new(api_key),
            site: site.to_string(),
            account_exists: true,
            rate: RateWindow::new(DEFAULT_RATE_LIMIT, Duration::from_secs(1)),
            stores: Vec::new(),
            statuses: Vec::new(),
            products: Vec::new(),
            offers: Vec::new(),
            offer_index: OfferIndex::default(),
            groups: Vec::new(),
            properties: Vec::new(),
            orders: Vec::new(),
            history: Vec::new(),
            modules: BTreeMap::new(),
            next_id: 1,
            vanish_on_upload: Default::default(),
            strict: RetailCrmStrictness::default(),
        };
        for (i, (code, name, group)) in DEFAULT_STATUSES.iter().enumerate() {
            state.add_status(code, name, group, (i as i64 + 1) * 10);
        }
        state.add_store("main", "Основной склад");
        state
    }

    pub(super) fn fresh_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The site code.
    pub fn site(&self) -> &str {
        &self.site
    }

    /// Requests per second before 503; 0 switches the limit off.
    pub fn set_rate_limit(&mut self, per_second: usize) {
        self.rate = RateWindow::new(per_second, Duration::from_secs(1));
    }

    /// When false, every request gets the HTML "account not found" page.
    pub fn set_account_exists(&mut self, exists: bool) {
        self.account_exists = exists;
    }

    /// Adds (or renames) a store with `inventoryType: integer`.
    pub fn add_store(&mut self, code: &str, name: &str) {
        self.stores.retain(|s| s.code != code);
        self.stores.push(SandboxStore {
            code: code.to_string(),
            name: name.to_string(),
            inventory_type: "integer".into(),
            active: true,
        });
    }

    /// Adds (or replaces) an order status.
    pub fn add_status(&mut self, code: &str, name: &str, group: &str, ordering: i64) {
        self.statuses.retain(|s| s.code != code);
        self.statuses.push(SandboxStatus {
            code: code.to_string(),
            name: name.to_string(),
            group: group.to_string(),
            ordering,
        });
    }

    /// Adds a product group; returns its id.
    pub fn add_product_group(&mut self, name: &str, parent_id: Option<i64>) -> i64 {
        let id = self.fresh_id();
        self.groups.push(SandboxGroup {
            id,
            name: name.to_string(),
            parent_id,
        });
        id
    }

    /// Adds a product property.
    pub fn add_property(&mut self, code: &str, name: &str) {
        self.properties.retain(|(c, _)| c != code);
        self.properties.push((code.to_string(), name.to_string()));
    }

    /// Adds a one-offer product and returns the offer id. Unknown store codes are created.
    pub fn add_offer(
        &mut self,
        external_id: Option<&str>,
        xml_id: Option<&str>,
        name: &str,
        price_kop: i64,
        quantities: &[(&str, f64)],
    ) -> i64 {
        for (store, _) in quantities {
            if !self.stores.iter().any(|s| s.code == *store) {
                self.add_store(store, store);
            }
        }
        let product_id = self.fresh_id();
        let offer_id = self.fresh_id();
        self.products.push(SandboxProduct {
            id: product_id,
            name: name.to_string(),
            group_ids: Vec::new(),
            active: true,
        });
        self.offers.push(SandboxOffer {
            id: offer_id,
            product_id,
            external_id: external_id.map(str::to_string),
            xml_id: xml_id.map(str::to_string),
            name: name.to_string(),
            price_kop,
            purchase_price_kop: None,
            store_prices: BTreeMap::new(),
            quantities: quantities
                .iter()
                .map(|(s, q)| (s.to_string(), *q))
                .collect(),
            active: true,
        });
        self.offer_index
            .add(self.offers.len() - 1, &self.offers[self.offers.len() - 1]);
        offer_id
    }

    /// Puts a product into a group.
    pub fn put_in_group(&mut self, offer_id: i64, group_id: i64) {
        let product_id = self
            .offers
            .iter()
            .find(|o| o.id == offer_id)
            .map(|o| o.product_id);
        if let Some(p) = self.products.iter_mut().find(|p| Some(p.id) == product_id) {
            p.group_ids.push(group_id);
        }
    }

    /// The offer with this SKU (`externalId` or `xmlId`).
    pub fn offer(&self, sku: &str) -> Option<&SandboxOffer> {
        self.offer_position(sku).map(|i| &self.offers[i])
    }

    /// Where the first offer with this `externalId` or `xmlId` stands.
    pub(super) fn offer_position(&self, sku: &str) -> Option<usize> {
        let by_ext = self.offer_index.by_external.get(sku).copied();
        let by_xml = self.offer_index.by_xml.get(sku).copied();
        match (by_ext, by_xml) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Number of offers.
    pub fn offer_count(&self) -> usize {
        self.offers.len()
    }

    /// The quantity of `sku` in `store` (`None` when either is unknown to the offer).
    pub fn quantity(&self, sku: &str, store: &str) -> Option<f64> {
        self.offer(sku)
            .and_then(|o| o.quantities.get(store).copied())
    }

    /// The purchase price of `sku` in `store`, kopecks (`None` when unknown).
    pub fn purchase_price(&self, sku: &str, store: &str) -> Option<i64> {
        self.offer(sku).and_then(|o| o.store_price(store))
    }

    /// Sets a store purchase price directly (a change made in the CRM UI).
    pub fn set_purchase_price(
        &mut self,
        sku: &str,
        store: &str,
        kop: i64,
    ) -> Result<(), SeedError> {
        let position = self
            .offer_position(sku)
            .ok_or_else(|| SeedError::UnknownOffer(sku.to_string()))?;
        self.offers[position]
            .store_prices
            .insert(store.to_string(), kop);
        Ok(())
    }

    /// Sets a quantity directly (a change made in the CRM UI).
    pub fn set_quantity(&mut self, sku: &str, store: &str, quantity: f64) -> Result<(), SeedError> {
        let position = self
            .offer_position(sku)
            .ok_or_else(|| SeedError::UnknownOffer(sku.to_string()))?;
        self.offers[position]
            .quantities
            .insert(store.to_string(), quantity);
        Ok(())
    }

    /// Creates an order (with its creation history entry); returns its CRM id.
    pub fn add_order(&mut self, new: NewOrder) -> Result<i64, SeedError> {
        if self.orders.iter().any(|o| o.external_id == new.external_id) {
            return Err(SeedError::DuplicateOrder(new.external_id));
        }
        if !self.statuses.iter().any(|s| s.code == new.status) {
            return Err(SeedError::UnknownStatus(new.status));
        }
        let mut items = Vec::with_capacity(new.items.len());
        for item in &new.items {
            let offer_id = self
                .offer(&item.sku)
                .map(|o| o.id)
                .ok_or_else(|| SeedError::UnknownOffer(item.sku.clone()))?;
            items.push((offer_id, item.quantity, item.price_kop));
        }
        let id = self.fresh_id();
        let items = items
            .into_iter()
            .map(|(offer_id, quantity, price_kop)| SandboxItem {
                id: self.fresh_id(),
                offer_id,
                quantity,
                price_kop,
            })
            .collect();
        self.orders.push(SandboxOrder {
            id,
            external_id: new.external_id,
            number: format!("{id}A"),
            site: self.site.clone(),
            status: new.status.clone(),
            shipped: false,
            shipment_store: new.shipment_store,
            shipment_date: None,
            items,
            delivery_code: new.delivery_code,
            delivery_cost_kop: new.delivery_cost_kop,
            track_number: None,
            created_at: now_text(),
        });
        self.push_history(
            id,
            "status",
            Value::Null,
            json!({ "code": new.status }),
            true,
        );
        Ok(id)
    }

    /// Sets what the warehouse already reported on a seeded order (shipped flag,
    /// track) without going through the API, as an account's history would hold it.
    pub fn set_order_fulfilment(
        &mut self,
        external_id: &str,
        shipped: bool,
        track: Option<String>,
    ) -> Result<(), SeedError> {
        let order = self
            .orders
            .iter_mut()
            .find(|o| o.external_id == external_id)
            .ok_or_else(|| SeedError::UnknownOrder(external_id.to_string()))?;
        order.shipped = shipped;
        order.track_number = track;
        Ok(())
    }

    /// The order with this external id.
    pub fn order(&self, external_id: &str) -> Option<&SandboxOrder> {
        self.orders.iter().find(|o| o.external_id == external_id)
    }

    /// Number of history entries.
    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    /// The history entries, oldest first.
    pub fn history(&self) -> &[SandboxHistory] {
        &self.history
    }

    /// Registers (or replaces) an integration module given as its JSON.
    pub fn register_module(&mut self, module: Value) -> Result<(), SeedError> {
        let code = module
            .get("code")
            .and_then(Value::as_str)
            .ok_or(SeedError::ModuleWithoutCode)?
            .to_string();
        self.modules.insert(code, module);
        Ok(())
    }

    /// A registered module's JSON.
    pub fn module(&self, code: &str) -> Option<&Value> {
        self.modules.get(code)
    }

    /// True when an active module with a warehouse (`integrations.store`) part exists.
    pub fn has_warehouse_module(&self) -> bool {
        self.modules.values().any(|m| {
            let active = m.get("active").is_none_or(|a| truthy(a).unwrap_or(true));
            active
                && m.pointer("/integrations/store")
                    .is_some_and(Value::is_object)
        })
    }

    pub(super) fn push_history(
        &mut self,
        order_id: i64,
        field: &str,
        old: Value,
        new: Value,
        created: bool,
    ) {
        let id = self.history.last().map_or(1, |h| h.id + 1);
        self.history.push(SandboxHistory {
            id,
            created_at: now_text(),
            created,
            field: field.to_string(),
            old_value: old,
            new_value: new,
            order_id,
        });
    }
}
