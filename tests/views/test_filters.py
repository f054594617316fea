"""Template helpers that shape what a product tile says."""

from app.models import RegionKind
from app.web.filters import tile_text


def test_placeholder_tile_drops_the_place_name(session, make):
    zhoushan = make.region(code="zs-tile", name_zh="舟山", kind=RegionKind.LOCAL)
    supplier = make.supplier(region=zhoushan)
    assert tile_text(make.product(name_zh="舟山带鱼", supplier=supplier)) == "带鱼"
    assert tile_text(make.product(name_zh="舟山大黄鱼（养殖）", supplier=supplier)) == "大黄鱼"
    assert (
        tile_text(make.product(name_zh="万源菜籽油", supplier=supplier, county_zh="万源市"))
        == "菜籽油"
    )
    assert tile_text(make.product(name_zh="灯影牛肉", supplier=supplier)) == "灯影牛肉"
    long_name = make.product(name_zh="巴蜀名特酱香鸭", supplier=supplier)
    assert tile_text(long_name) == "酱香鸭"
    # A name that is only the place keeps it.
    assert tile_text(make.product(name_zh="舟山鱼", supplier=supplier)) == "舟山鱼"
