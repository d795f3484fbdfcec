/** Three views of the pricing page within 30 days make a lead: rules small enough that each event's effect shows. */
export const threePricingViewsRules = `
version: 1
signals:
  pricing: { event: Pricing Viewed, window: 30d, at_least: 3, points: 40 }
tiers:
  - { name: PQL, min_score: 40, route: sales }
`;
