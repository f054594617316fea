"""Who may use each endpoint of the site: the one table tests/test_access.py checks the app against.

Written from what each page is for, not copied from the views' decorators; the test fails when
the two disagree, when a route has no entry here, or when an entry names no route. A new route
needs a line in its area below.

    PUBLIC      anyone, logged in or not
    LOGGED_IN   any logged-in user, whatever the role (pages about the user's own account)
    {roles}     a logged-in user holding at least one of these roles

Object-level rules (whose order, delivery, product, invoice) are checked separately, in
tests/views/test_object_access.py.
"""

from __future__ import annotations

from app.models import Role
from app.web.access import LOGGED_IN, PUBLIC

Access = str | frozenset[Role]

STAFF = Role.STAFF
BUYER = Role.CANTEEN_BUYER
MANAGER = Role.CANTEEN_MANAGER
SUPPLIER = Role.SUPPLIER
CLERK = Role.COUNTER_CLERK
COORDINATOR = Role.COORDINATOR
ADMIN = Role.ADMIN


def only(*roles: Role) -> frozenset[Role]:
    return frozenset(roles)


#: The coordinators run the programme (pledges, review, invoices); admins may do all they do.
STEWARDS = only(COORDINATOR, ADMIN)
#: The Dazhou counter: its clerks, and the stewards who stand in for them and settle refunds.
COUNTER = only(CLERK, COORDINATOR, ADMIN)
#: A canteen's own people, and the stewards who oversee every canteen's spending.
CANTEEN_AND_STEWARDS = only(BUYER, MANAGER, COORDINATOR, ADMIN)

ACCESS: dict[str, Access] = {
    # --- open to everyone: the catalog and supplier pages, the public board and its API, photo
    # files, the language switch, health probes for the load balancer.
    "catalog.home": PUBLIC,
    "catalog.product_list": PUBLIC,
    "catalog.suggest": PUBLIC,
    "catalog.product_detail": PUBLIC,  # products not on sale: their supplier and stewards only
    "catalog.supplier_detail": PUBLIC,
    "board.index": PUBLIC,
    "board.api_pledges": PUBLIC,  # public pledges only
    "board.api_openapi": PUBLIC,  # the description of the public JSON API
    "media.photo": PUBLIC,  # unguessable file names, of photos shown on public pages
    "i18n.switch": PUBLIC,
    "health.healthz": PUBLIC,
    "health.readyz": PUBLIC,
    # Stripe calls it without a session; its signature is the check (tests/views/test_webhook.py).
    "webhooks.stripe_webhook": PUBLIC,
    # --- the account: logging in and registering (staff sign themselves up) before having one,
    # logging out whatever state one is in; the rest is about one's own account.
    "auth.login": PUBLIC,
    "auth.register": PUBLIC,
    "auth.logout": PUBLIC,
    "auth.account": LOGGED_IN,
    "auth.change_password": LOGGED_IN,
    "inbox.index": LOGGED_IN,  # one's own notifications
    "inbox.mark_read": LOGGED_IN,
    # --- retail shopping: staff (职工) buy for themselves. The counter may open any order to
    # serve it; everything else on an order is its buyer's (staff only, own orders only).
    "shop.add_to_cart": only(STAFF),
    "shop.show_cart": only(STAFF),
    "shop.change_quantity": only(STAFF),
    "shop.remove_from_cart": only(STAFF),
    "shop.checkout": only(STAFF),
    "shop.my_orders": only(STAFF),
    "shop.order_detail": only(STAFF, *COUNTER),
    "shop.payment_done": only(STAFF),
    "shop.payment_cancelled": only(STAFF),
    "shop.pay_online": only(STAFF),
    "shop.pay_at_counter": only(STAFF),
    "shop.cancel_order": only(STAFF),
    # --- the counter: prepare, take payment, hand over, refund, print shelf labels.
    "counter.index": COUNTER,
    "counter.act": COUNTER,
    "counter.refund": COUNTER,
    "counter.refunds": COUNTER,
    "counter.labels": COUNTER,
    "counter.label_sheet": COUNTER,
    # --- canteen bulk orders: the buyer drafts, submits and answers suppliers; the manager
    # approves or rejects and signs goods in; both (and the stewards) read the orders.
    "canteen.orders": CANTEEN_AND_STEWARDS,
    "canteen.export_orders": CANTEEN_AND_STEWARDS,
    "canteen.order_detail": CANTEEN_AND_STEWARDS,  # POST edits a draft: see NARROWER_FOR_METHOD
    "canteen.sheet": only(BUYER),
    "canteen.sheet_template": only(BUYER),
    "canteen.upload_sheet": only(BUYER),
    "canteen.submit": only(BUYER),
    "canteen.reopen": only(BUYER),
    "canteen.cancel": only(BUYER),
    "canteen.copy": only(BUYER),
    "canteen.accept_reduction": only(BUYER),
    "canteen.cancel_line": only(BUYER),
    "canteen.approve": only(MANAGER),
    "canteen.reject": only(MANAGER),
    "canteen.goods_in": only(MANAGER),
    # --- invoices: each supplier and canteen reads its own; the stewards read all and are the
    # only ones to record bank payments and issue credit notes.
    "invoices.index": only(SUPPLIER, BUYER, MANAGER, *STEWARDS),
    "invoices.detail": only(SUPPLIER, BUYER, MANAGER, *STEWARDS),
    "invoices.download_pdf": only(SUPPLIER, BUYER, MANAGER, *STEWARDS),
    "invoices.record_payment": STEWARDS,
    "invoices.record_refund": STEWARDS,
    "invoices.credit": STEWARDS,
    # --- the supplier portal: a supplier's own deliveries, listings, photos, stock and profile.
    # Nobody else works here, not even an admin: they see products through the review queue.
    "supplier.dashboard": only(SUPPLIER),
    "supplier.deliveries": only(SUPPLIER),
    "supplier.delivery": only(SUPPLIER),
    "supplier.confirm": only(SUPPLIER),
    "supplier.ship": only(SUPPLIER),
    "supplier.delivery_note": only(SUPPLIER),
    "supplier.listings": only(SUPPLIER),
    "supplier.new_listing": only(SUPPLIER),
    "supplier.edit_listing": only(SUPPLIER),
    "supplier.archive_listing": only(SUPPLIER),
    "supplier.restore_listing": only(SUPPLIER),
    "supplier.import_products": only(SUPPLIER),
    "supplier.import_template": only(SUPPLIER),
    "supplier.photos": only(SUPPLIER),
    "supplier.upload_photos": only(SUPPLIER),
    "supplier.photo_main": only(SUPPLIER),
    "supplier.photo_move": only(SUPPLIER),
    "supplier.photo_delete": only(SUPPLIER),
    "supplier.stock": only(SUPPLIER),
    "supplier.stock_history": only(SUPPLIER),
    "supplier.adjust_stock": only(SUPPLIER),
    "supplier.set_threshold": only(SUPPLIER),
    "supplier.profile": only(SUPPLIER),
    "supplier.save_profile": only(SUPPLIER),
    "supplier.add_certificate": only(SUPPLIER),
    "supplier.remove_certificate": only(SUPPLIER),
    # --- product review: the stewards approve or send back suppliers' versions.
    "review.index": STEWARDS,
    "review.detail": STEWARDS,
    "review.approve": STEWARDS,
    "review.send_back": STEWARDS,
    # --- pledges (消费帮扶): targets, the ledger, reports, imports of offline sales.
    "pledges.index": STEWARDS,
    "pledges.new": STEWARDS,
    "pledges.detail": STEWARDS,
    "pledges.edit": STEWARDS,
    "pledges.ledger": STEWARDS,
    "pledges.report": STEWARDS,
    "pledges.export_csv": STEWARDS,
    "pledges.export_xlsx": STEWARDS,
    "pledges.export_summary_csv": STEWARDS,
    "pledges.ranking": STEWARDS,
    "pledges.ranking_xlsx": STEWARDS,
    "pledges.reattribute": STEWARDS,
    "pledges.imports": STEWARDS,
    "pledges.import_template": STEWARDS,
    "pledges.import_detail": STEWARDS,
    "pledges.commit_import": STEWARDS,
    "pledges.discard_import": STEWARDS,
    "pledges.reverse_import": STEWARDS,
    # --- administration: accounts, organizations, regions, delivery places, the mail outbox.
    "admin.index": only(ADMIN),
    "admin.users": only(ADMIN),
    "admin.new_user": only(ADMIN),
    "admin.edit_user": only(ADMIN),
    "admin.organizations_list": only(ADMIN),
    "admin.edit_organization": only(ADMIN),
    "admin.regions": only(ADMIN),
    "admin.edit_region": only(ADMIN),
    "admin.delivery_places": only(ADMIN),
    "admin.outbox": only(ADMIN),
}

#: Where one method of an endpoint is for fewer people than the endpoint: the view's decorator
#: lets in everyone ACCESS names, and the rules behind it refuse the others with a 403 giving
#: the reason (and change nothing).
NARROWER_FOR_METHOD: dict[tuple[str, str], Access] = {
    # Anyone who may read a bulk order sees its page; only its canteen's buyer edits a draft.
    ("canteen.order_detail", "POST"): only(BUYER),
}


def allows(access: Access, roles: frozenset[Role] | None) -> bool:
    """Whether a visitor with these roles (None: not logged in) may use the endpoint."""
    if access == PUBLIC:
        return True
    if roles is None:
        return False
    return access == LOGGED_IN or not access.isdisjoint(roles)
