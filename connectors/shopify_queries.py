"""The Admin GraphQL documents the Shopify connector sends, and what each one selects.

Field names follow the Admin GraphQL reference (API 2026-07). Every selection is written once and
used by both ways of reading a stream: a bulk operation for the backfill and cursor-paged queries
for increments, so both land the same record shape.

Cost: Shopify refuses any query whose *requested* cost is above 1000 points (objects cost 1,
connections 2 plus ``first`` times their children). Page sizes below keep every paged query well
under that; the client learns each query's real requested cost from ``extensions.cost`` and
paces with it.

Bulk limits shape the selections too: a bulk query may hold at most 5 connections, nested at
most 2 deep, and no connection inside a list field. An order's ``fulfillments`` and ``refunds``
are list fields, so their line-item connections cannot ride in the bulk query; they are read
afterwards for the orders that have any (:data:`ORDER_DETAILS`).
"""
from __future__ import annotations

MONEY_BAG = "{ shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }"
MONEY = "{ amount currencyCode }"
PAGE_INFO = "pageInfo { hasNextPage endCursor }"

# ---------------------------------------------------------------- orders

ORDER_LINE = f"""id name title variantTitle vendor sku quantity currentQuantity unfulfilledQuantity
  requiresShipping taxable variant {{ id legacyResourceId }} product {{ id legacyResourceId }}
  originalUnitPriceSet {MONEY_BAG} discountedTotalSet {MONEY_BAG} totalDiscountSet {MONEY_BAG}"""

# everything of an order but its line items (a connection, selected separately)
ORDER_FIELDS = f"""id legacyResourceId name email createdAt updatedAt processedAt closed closedAt cancelledAt cancelReason
  test displayFinancialStatus displayFulfillmentStatus currencyCode presentmentCurrencyCode sourceName note tags
  discountCodes subtotalLineItemsQuantity
  totalPriceSet {MONEY_BAG} subtotalPriceSet {MONEY_BAG} totalTaxSet {MONEY_BAG} totalShippingPriceSet {MONEY_BAG}
  totalDiscountsSet {MONEY_BAG} currentTotalPriceSet {MONEY_BAG} totalRefundedSet {MONEY_BAG}
  totalOutstandingSet {MONEY_BAG}
  customer {{ id legacyResourceId }}
  shippingAddress {{ city provinceCode zip countryCodeV2 }}
  fulfillments {{ id legacyResourceId name status displayStatus createdAt updatedAt inTransitAt deliveredAt
    totalQuantity location {{ id legacyResourceId }} trackingInfo {{ company number url }} }}
  refunds {{ id legacyResourceId createdAt updatedAt note totalRefundedSet {MONEY_BAG} }}
  transactions {{ id kind status gateway test createdAt processedAt amountSet {MONEY_BAG} parentTransaction {{ id }} }}"""

ORDERS_BULK = f"""{{ orders {{ edges {{ node {{ {ORDER_FIELDS}
  lineItems {{ edges {{ node {{ {ORDER_LINE} }} }} }} }} }} }} }}"""

ORDERS_PAGE = f"""query OrdersPage($first: Int!, $after: String, $query: String, $lines: Int!) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    {PAGE_INFO}
    nodes {{ {ORDER_FIELDS} lineItems(first: $lines) {{ {PAGE_INFO} nodes {{ {ORDER_LINE} }} }} }}
  }}
}}"""

ORDER_LINES_PAGE = f"""query OrderLines($id: ID!, $first: Int!, $after: String) {{
  node(id: $id) {{ ... on Order {{ lineItems(first: $first, after: $after) {{ {PAGE_INFO} nodes {{ {ORDER_LINE} }} }} }} }}
}}"""

FULFILLMENT_LINE = "id quantity lineItem { id sku }"
REFUND_LINE = f"id quantity restockType restocked lineItem {{ id sku }} subtotalSet {MONEY_BAG} totalTaxSet {MONEY_BAG}"
REFUND_TRANSACTION = f"id kind status gateway processedAt amountSet {MONEY_BAG}"

# the nested connections of fulfillments and refunds, for a batch of orders
ORDER_DETAILS = f"""query OrderDetails($ids: [ID!]!, $lines: Int!, $refundLines: Int!, $refundTransactions: Int!) {{
  nodes(ids: $ids) {{ ... on Order {{ id
    fulfillments {{ id fulfillmentLineItems(first: $lines) {{ {PAGE_INFO} nodes {{ {FULFILLMENT_LINE} }} }} }}
    refunds {{ id
      refundLineItems(first: $refundLines) {{ {PAGE_INFO} nodes {{ {REFUND_LINE} }} }}
      transactions(first: $refundTransactions) {{ {PAGE_INFO} nodes {{ {REFUND_TRANSACTION} }} }} }}
  }} }}
}}"""

# a nested connection that did not fit its first page, continued from the node that owns it
FULFILLMENT_LINES_PAGE = f"""query FulfillmentLines($id: ID!, $first: Int!, $after: String) {{
  node(id: $id) {{ ... on Fulfillment {{ fulfillmentLineItems(first: $first, after: $after) {{ {PAGE_INFO} nodes {{ {FULFILLMENT_LINE} }} }} }} }}
}}"""
REFUND_LINES_PAGE = f"""query RefundLines($id: ID!, $first: Int!, $after: String) {{
  node(id: $id) {{ ... on Refund {{ refundLineItems(first: $first, after: $after) {{ {PAGE_INFO} nodes {{ {REFUND_LINE} }} }} }} }}
}}"""
REFUND_TRANSACTIONS_PAGE = f"""query RefundTransactions($id: ID!, $first: Int!, $after: String) {{
  node(id: $id) {{ ... on Refund {{ transactions(first: $first, after: $after) {{ {PAGE_INFO} nodes {{ {REFUND_TRANSACTION} }} }} }} }}
}}"""

# ---------------------------------------------------------------- products

# stock counts (totalInventory, inventoryQuantity) move without updatedAt moving: stock is read
# whole every run from inventory levels instead, so product rows change only when products do
PRODUCT_FIELDS = "id legacyResourceId title handle productType vendor tags status createdAt updatedAt publishedAt"
VARIANT_FIELDS = f"""id legacyResourceId sku title displayName barcode price position createdAt updatedAt
  inventoryItem {{ id legacyResourceId tracked unitCost {MONEY} }}"""

PRODUCTS_BULK = f"{{ products {{ edges {{ node {{ {PRODUCT_FIELDS} variants {{ edges {{ node {{ {VARIANT_FIELDS} }} }} }} }} }} }} }}"

PRODUCTS_PAGE = f"""query ProductsPage($first: Int!, $after: String, $query: String, $lines: Int!) {{
  products(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    {PAGE_INFO}
    nodes {{ {PRODUCT_FIELDS} variants(first: $lines) {{ {PAGE_INFO} nodes {{ {VARIANT_FIELDS} }} }} }}
  }}
}}"""

PRODUCT_VARIANTS_PAGE = f"""query ProductVariants($id: ID!, $first: Int!, $after: String) {{
  node(id: $id) {{ ... on Product {{ variants(first: $first, after: $after) {{ {PAGE_INFO} nodes {{ {VARIANT_FIELDS} }} }} }} }}
}}"""

# ---------------------------------------------------------------- inventory

INVENTORY_ITEM_FIELDS = "id legacyResourceId sku tracked updatedAt"
INVENTORY_LEVEL_FIELDS = """id updatedAt location { id legacyResourceId name }
  quantities(names: ["available", "on_hand", "committed", "incoming"]) { name quantity }"""

INVENTORY_PAGE = f"""query InventoryPage($first: Int!, $after: String, $levels: Int!) {{
  inventoryItems(first: $first, after: $after) {{
    {PAGE_INFO}
    nodes {{ {INVENTORY_ITEM_FIELDS} inventoryLevels(first: $levels) {{ {PAGE_INFO} nodes {{ {INVENTORY_LEVEL_FIELDS} }} }} }}
  }}
}}"""

INVENTORY_LEVELS_PAGE = f"""query InventoryLevels($id: ID!, $first: Int!, $after: String) {{
  node(id: $id) {{ ... on InventoryItem {{ inventoryLevels(first: $first, after: $after) {{ {PAGE_INFO} nodes {{ {INVENTORY_LEVEL_FIELDS} }} }} }} }}
}}"""

# ---------------------------------------------------------------- Shopify Payments

PAYOUT_FIELDS = f"""id legacyResourceId issuedAt status transactionType net {MONEY}
  summary {{ adjustmentsFee {MONEY} adjustmentsGross {MONEY} chargesFee {MONEY} chargesGross {MONEY}
    refundsFee {MONEY} refundsFeeGross {MONEY} reservedFundsFee {MONEY} reservedFundsGross {MONEY}
    retriedPayoutsFee {MONEY} retriedPayoutsGross {MONEY} }}"""

PAYOUTS_BULK = f"{{ shopifyPaymentsAccount {{ payouts {{ edges {{ node {{ {PAYOUT_FIELDS} }} }} }} }} }}"
PAYOUTS_PAGE = f"""query PayoutsPage($first: Int!, $after: String, $query: String) {{
  shopifyPaymentsAccount {{ payouts(first: $first, after: $after, query: $query, sortKey: ISSUED_AT) {{
    {PAGE_INFO} nodes {{ {PAYOUT_FIELDS} }} }} }}
}}"""

BALANCE_TRANSACTION_FIELDS = f"""id type test transactionDate amount {MONEY} fee {MONEY} net {MONEY}
  sourceId sourceType sourceOrderTransactionId adjustmentReason associatedOrder {{ id name }}
  associatedPayout {{ id status }}"""

BALANCE_TRANSACTIONS_BULK = (
    f"{{ shopifyPaymentsAccount {{ balanceTransactions {{ edges {{ node {{ {BALANCE_TRANSACTION_FIELDS} }} }} }} }} }}")
BALANCE_TRANSACTIONS_PAGE = f"""query BalanceTransactionsPage($first: Int!, $after: String, $query: String) {{
  shopifyPaymentsAccount {{ balanceTransactions(first: $first, after: $after, query: $query, sortKey: PROCESSED_AT) {{
    {PAGE_INFO} nodes {{ {BALANCE_TRANSACTION_FIELDS} }} }} }}
}}"""

DISPUTE_FIELDS = f"""id legacyResourceId amount {MONEY} initiatedAt evidenceDueBy evidenceSentOn finalizedOn status type
  reasonDetails {{ reason networkReasonCode }} order {{ id legacyResourceId name }}"""
DISPUTES_PAGE = f"""query DisputesPage($first: Int!, $after: String, $query: String) {{
  shopifyPaymentsAccount {{ disputes(first: $first, after: $after, query: $query) {{ {PAGE_INFO} nodes {{ {DISPUTE_FIELDS} }} }} }}
}}"""

# ---------------------------------------------------------------- bulk operations and writes

BULK_OPERATION_FIELDS = "id status errorCode createdAt completedAt objectCount rootObjectCount fileSize url partialDataUrl query"
BULK_RUN = f"""mutation BulkRun($query: String!) {{
  bulkOperationRunQuery(query: $query) {{ bulkOperation {{ {BULK_OPERATION_FIELDS} }} userErrors {{ code field message }} }}
}}"""
BULK_NODE = f"""query BulkOperation($id: ID!) {{ node(id: $id) {{ ... on BulkOperation {{ {BULK_OPERATION_FIELDS} }} }} }}"""
BULK_CURRENT = f"""query CurrentBulkOperation {{ currentBulkOperation(type: QUERY) {{ {BULK_OPERATION_FIELDS} }} }}"""

TAGS_ADD = """mutation TagsAdd($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } }
}"""
ORDER_UPDATE = """mutation OrderUpdate($input: OrderInput!) {
  orderUpdate(input: $input) { order { id legacyResourceId note tags updatedAt } userErrors { field message } }
}"""


def top_level_fields(selection: str) -> tuple[str, ...]:
    """The field names a selection asks for at its own level (nested selections and arguments skipped).

    GraphQL returns every selected field, null when it has no value; a record missing one of
    these keys was damaged on the way and is quarantined rather than loaded half-empty.
    """
    names: list[str] = []
    depth = parens = 0
    token = ""
    for char in selection + " ":
        if depth == 0 and parens == 0 and (char.isalnum() or char == "_"):
            token += char
            continue
        if token:
            names.append(token)
            token = ""
        depth += {"{": 1, "}": -1}.get(char, 0)
        parens += {"(": 1, ")": -1}.get(char, 0)
    return tuple(dict.fromkeys(names))
