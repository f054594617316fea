"""The admin area: accounts, organizations and regions."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.admin.forms import (
    DeliveryPlaceForm,
    OrganizationForm,
    RegionForm,
    UserFilterForm,
    UserForm,
)
from app.extensions import db
from app.models import OrgKind, Region, RegionKind, Role, SupplierType
from app.services import accounts, delivery, notify, organizations
from app.services.clock import utcnow
from app.services.errors import NotFound
from app.services.organizations import OrganizationData
from app.services.pagination import paginate
from app.web.access import roles_required
from app.web.filters import localized
from app.web.forms import commit_form, form_status, options, requested_page

bp = Blueprint("admin", __name__)

admin_only = roles_required(Role.ADMIN)


def _organization_choices():
    orgs = organizations.organizations_of_kind(db.session, *OrgKind, active_only=False)
    return options([(0, "—"), *((org.id, f"{org.kind.label} · {org.name_zh}") for org in orgs)])


def _region_choices():
    regions = organizations.all_regions(db.session)
    return options([(0, "—"), *((r.id, localized(r)) for r in regions)])


@bp.get("/")
@admin_only
def index():
    """Admin home."""
    return redirect(url_for("admin.users"))


@bp.get("/users")
@admin_only
def users():
    """All accounts, searchable by name, e-mail and role."""
    form = UserFilterForm(request.args)
    if not form.validate():
        return render_template("admin/users.html", form=form, page=None), 400
    role = Role(form.role.data) if form.role.data else None
    stmt = accounts.search_users_statement(form.q.data or "", role)
    page = paginate(
        db.session, stmt, form.page.data or 1, current_app.config["ADMIN_ROWS_PER_PAGE"]
    )
    return render_template("admin/users.html", form=form, page=page)


def _chosen_organization(form: UserForm):
    org_id = form.organization_id.data
    return organizations.get_organization(db.session, org_id) if org_id else None


@bp.route("/users/new", methods=["GET", "POST"])
@admin_only
def new_user():
    """Create an account with roles and an organization."""
    form = UserForm()
    form.organization_id.choices = _organization_choices()
    if form.validate_on_submit():
        outcome = commit_form(
            form,
            lambda: accounts.create_user(
                db.session,
                email=form.email.data,
                name=form.name.data,
                password=form.password.data or "",
                roles=[Role(r) for r in form.roles.data],
                organization=_chosen_organization(form),
                active=form.active.data,
                now=utcnow(),
            ),
        )
        if outcome.ok:
            flash(_("Account %(email)s created.", email=outcome.value.email), "success")
            return redirect(url_for("admin.users"))
    return render_template("admin/user_form.html", form=form, user=None), form_status(form)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@admin_only
def edit_user(user_id: int):
    """Change an account's name, roles, organization, password, or disable it."""
    user = accounts.get_user(db.session, user_id)
    form = UserForm(obj=user)
    form.email.data = user.email  # the login name does not change here
    form.organization_id.choices = _organization_choices()
    if request.method == "GET":
        form.roles.data = [r.value for r in user.roles]
    if form.validate_on_submit():
        outcome = commit_form(
            form,
            lambda: accounts.update_user(
                db.session,
                current_user,
                user,
                name=form.name.data,
                roles=[Role(r) for r in form.roles.data],
                organization=_chosen_organization(form),
                active=form.active.data,
                new_password=form.password.data or None,
            ),
        )
        if outcome.ok:
            flash(_("Account %(email)s saved.", email=user.email), "success")
            return redirect(url_for("admin.users"))
    return render_template("admin/user_form.html", form=form, user=user), form_status(form)


@bp.get("/organizations")
@admin_only
def organizations_list():
    """Suppliers, canteens, departments and counters."""
    orgs = organizations.organizations_of_kind(db.session, *OrgKind, active_only=False)
    return render_template("admin/organizations.html", organizations=orgs)


def _organization_data(form: OrganizationForm) -> OrganizationData:
    return OrganizationData(
        code=form.code.data,
        kind=OrgKind(form.kind.data),
        name_zh=form.name_zh.data,
        name_en=form.name_en.data or "",
        region_id=form.region_id.data,
        address=form.address.data or "",
        contact_name=form.contact_name.data or "",
        contact_phone=form.contact_phone.data or "",
        supplier_type=SupplierType(form.supplier_type.data) if form.supplier_type.data else None,
        county_zh=form.county_zh.data or "",
        households_benefited=form.households_benefited.data or 0,
        certifications=form.certifications.data or "",
        story_zh=form.story_zh.data or "",
        story_en=form.story_en.data or "",
        active=form.active.data,
    )


@bp.route("/organizations/new", methods=["GET", "POST"])
@bp.route("/organizations/<int:org_id>", methods=["GET", "POST"])
@admin_only
def edit_organization(org_id: int | None = None):
    """Create or edit an organization."""
    org = organizations.get_organization(db.session, org_id) if org_id else None
    form = OrganizationForm(obj=org)
    if org is not None and request.method == "GET":
        form.supplier_type.data = org.supplier_type.value if org.supplier_type else ""
    form.region_id.choices = _region_choices()
    if form.validate_on_submit():

        def save():
            data = _organization_data(form)
            if org is None:
                return organizations.create_organization(db.session, current_user, data, utcnow())
            organizations.update_organization(db.session, current_user, org, data)
            return org

        outcome = commit_form(form, save)
        if outcome.ok:
            flash(_("Organization %(name)s saved.", name=outcome.value.name_zh), "success")
            return redirect(url_for("admin.organizations_list"))
    if org is not None:
        form.code.data = org.code
    return render_template("admin/organization_form.html", form=form, org=org), form_status(form)


@bp.route("/delivery-places", methods=["GET", "POST"])
@bp.route("/delivery-places/<int:place_id>", methods=["GET", "POST"])
@admin_only
def delivery_places(place_id: int | None = None):
    """The offices the counter delivers to: the list, and a form to add or change one."""
    place = delivery.get_place(db.session, place_id) if place_id else None
    form = DeliveryPlaceForm(obj=place)
    if form.validate_on_submit():
        outcome = commit_form(
            form,
            lambda: delivery.save_place(
                db.session,
                current_user,
                place,
                building_zh=form.building_zh.data,
                room=form.room.data,
                active=form.active.data,
            ),
        )
        if outcome.ok:
            flash(_("%(place)s saved.", place=outcome.value.address), "success")
            return redirect(url_for("admin.delivery_places"))
    places = delivery.all_places(db.session)
    return render_template(
        "admin/delivery_places.html", form=form, place=place, places=places
    ), form_status(form)


@bp.get("/regions")
@admin_only
def regions():
    """Origin regions of produce."""
    return render_template("admin/regions.html", regions=organizations.all_regions(db.session))


@bp.route("/regions/new", methods=["GET", "POST"])
@bp.route("/regions/<int:region_id>", methods=["GET", "POST"])
@admin_only
def edit_region(region_id: int | None = None):
    """Create or edit a region."""
    region = db.session.get(Region, region_id) if region_id else None
    if region_id and region is None:
        raise NotFound(_("No such region."))
    form = RegionForm(obj=region)
    if form.validate_on_submit():
        outcome = commit_form(
            form,
            lambda: organizations.save_region(
                db.session,
                current_user,
                region,
                code=form.code.data,
                name_zh=form.name_zh.data,
                name_en=form.name_en.data or "",
                province_zh=form.province_zh.data or "",
                province_en=form.province_en.data or "",
                kind=RegionKind(form.kind.data),
            ),
        )
        if outcome.ok:
            flash(_("Region %(name)s saved.", name=outcome.value.name_zh), "success")
            return redirect(url_for("admin.regions"))
    return render_template("admin/region_form.html", form=form, region=region), form_status(form)


@bp.get("/outbox")
@admin_only
def outbox():
    """E-mails the shop has written, sent or (without a mail server) waiting to be read here."""
    page = notify.outbox(db.session, requested_page())
    return render_template(
        "admin/outbox.html", page=page, mail_server=current_app.config.get("MAIL_SERVER")
    )
