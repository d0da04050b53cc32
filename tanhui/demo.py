"""The Huzhou demo: organisations for every role, their logins, and (as packages land) the
projects, batches, orders and residents that make the platform worth looking at.

Idempotent: seeding an already-seeded database changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session, col, select

import market.demo
import market.rewards.demo
import registry.demo
from tanhui import identity
from tanhui.db import create_engine, unit_of_work
from tanhui.migrate import upgrade
from tanhui.models import Organisation, OrgKind, Role, User
from tanhui.settings import Settings
from wallet.service import anchor_chains

# Demo credentials are seed data for a local SQLite file, printed at start; not secrets.
DEMO_PASSWORD = "tanhui-demo-2026"  # noqa: S105
DEMO_RESIDENT_PHONE = "+8613800000001"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    organisation: str


# the login of each of registry.demo.ANJI_VILLAGES (Dali's keeps the cooperative's usual login)
ANJI_LOGINS = ("coop", "coop-hengxiwu", "coop-shuangxi", "coop-zhuhai", "coop-bimen")
DEMO_ORGANISATIONS: list[tuple[OrgKind, str, str, str]] = [
    # kind, name, login email, what they do (printed)
    (OrgKind.platform, "碳惠平台运营（演示）", "platform@demo.tanhui.cn", "platform staff"),
    # Anji's first collection: five village cooperatives, Dali's first (coop@, project AJ0001)
    *[
        (OrgKind.cooperative, village.cooperative, f"{login}@demo.tanhui.cn", "cooperative")
        for village, login in zip(registry.demo.ANJI_VILLAGES, ANJI_LOGINS, strict=True)
    ],
    (
        OrgKind.cooperative,
        "德清县下渚湖湿地生态资源运营（演示）",
        "wetland@demo.tanhui.cn",
        "cooperative",
    ),
    (OrgKind.verifier, "浙江碳汇核证中心（演示）", "verifier@demo.tanhui.cn", "verifier"),
    (OrgKind.authority, "湖州市生态环境局（演示）", "authority@demo.tanhui.cn", "authority"),
    (OrgKind.enterprise, "湖州绿能制造有限公司（演示）", "buyer@demo.tanhui.cn", "enterprise"),
    (OrgKind.court, "湖州市南太湖新区人民法院（演示）", "court@demo.tanhui.cn", "court"),
    (
        OrgKind.compensation_fund,
        "湖州市生态保护补偿基金（演示）",
        "fund@demo.tanhui.cn",
        "compensation fund",
    ),
    (OrgKind.merchant, "莫干山民宿联盟（演示）", "merchant@demo.tanhui.cn", "merchant"),
    (OrgKind.data_partner, "湖州公交集团（演示）", "partner@demo.tanhui.cn", "data partner"),
]
ADMIN_EMAIL = "admin@demo.tanhui.cn"


def seed(session: Session, progress: Progress) -> list[DemoLogin]:
    logins = [DemoLogin("platform admin", ADMIN_EMAIL, "-")]
    if identity.find_user_by_email(session, ADMIN_EMAIL) is None:
        identity.create_user(
            session,
            email=ADMIN_EMAIL,
            password=DEMO_PASSWORD,
            is_platform_admin=True,
            display_name="平台管理员",
            actor="system:demo",
        )
    for kind, name, email, label in DEMO_ORGANISATIONS:
        progress(f"  organisation {name}")
        organisation = session.exec(
            select(Organisation).where(col(Organisation.name) == name)
        ).one_or_none() or identity.create_organisation(
            session, name=name, kind=kind, actor="system:demo"
        )
        if identity.find_user_by_email(session, email) is None:
            identity.create_user(
                session,
                email=email,
                password=DEMO_PASSWORD,
                organisation=organisation,
                role=Role.owner,
                display_name=name.split("（")[0],
                actor="system:demo",
            )
        logins.append(DemoLogin(label, email, name))
    if identity.find_resident_by_phone(session, DEMO_RESIDENT_PHONE) is None:
        identity.create_resident(
            session, phone=DEMO_RESIDENT_PHONE, display_name="湖州居民", actor="system:demo"
        )
    registry.demo.seed(session, progress)
    market.rewards.demo.seed(session, progress)
    market.demo.seed(session, progress)
    market.rewards.demo.honour_platform_voucher(session, progress)  # the pool sale's fund pays
    anchor_chains(session, actor="system:demo")  # as `tanhui wallet anchor` does from cron
    return logins


def prepare(settings: Settings, progress: Progress) -> list[DemoLogin]:
    """Migrate the demo database and seed it (once)."""
    engine = create_engine(settings)
    progress("migrating the database ...")
    upgrade(engine)
    progress("seeding the Huzhou demo ...")
    with unit_of_work(engine) as session:
        logins = seed(session, progress)
        session.flush()
        users = session.exec(select(User.email)).all()
    engine.dispose()
    progress(f"ready: {len(users)} users")
    return logins


def login_lines(logins: list[DemoLogin]) -> list[str]:
    lines = [f"Demo logins (password for all: {DEMO_PASSWORD}), sign in at /login:"]
    lines += [f"  {login.role:<18} {login.email:<30} {login.organisation}" for login in logins]
    lines.append(
        f"  resident           phone {DEMO_RESIDENT_PHONE} at /app (the sign-in code is printed"
        " in this console)"
    )
    lines.append(
        "Sample upload files (synthetic households, parcels in Anji, a contract, an index raster)"
        " for the cooperative portal: /coop/samples/households.csv, parcels.geojson, contracts.csv,"
        " index-synthetic.tif (listed on /coop)"
    )
    return lines
