"""The synthetic county's request history (contract §1.7): about one request per ten entities
a year, from the hotline, the stations, the portal, visits and Open311, in varied Chinese
written the way owners write (an opener, the matter with the firm's own details, what they
ask for), with categories, departments, dates, closures and ratings.

The phrasings here are built from fragments of their own, not from the routing seed
(engine/requests/seed.yaml), so that a model learnt on one is judged on the other.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from qifu.engine.requests.categories import CATEGORIES

# How often each category comes up (B.5's forum shares, adapted to a manufacturing county).
SHARE = {
    "policy": 0.13, "land": 0.09, "talent": 0.08, "finance": 0.08, "utilities": 0.08, "tax": 0.07,
    "registration": 0.06, "social_security": 0.06, "construction": 0.05, "environment": 0.05, "annual_report": 0.04,
    "technology": 0.04, "traffic": 0.04, "trade": 0.04, "legal": 0.03, "safety": 0.03, "ip": 0.02, "other": 0.01,
}
CHANNELS = (("hotline", 0.44), ("station", 0.26), ("portal", 0.20), ("visit", 0.08), ("open311", 0.02))

OPENERS = ("", "", "你好，", "您好，", "请问，", "麻烦问一下，", "我是{name}的负责人，", "我们是做{product}的，",
           "我们公司在{town}，", "反映一个情况：", "求助：", "{name}反映：")
CLOSERS = ("", "", "谢谢。", "麻烦尽快回复。", "希望有关部门帮忙解决。", "请联系我们。", "盼复！", "急！", "望协调。")
PRODUCTS = ("小家电", "轴承", "汽车配件", "模具", "电线电缆", "服装", "塑料制品", "五金工具", "阀门", "照明灯具",
            "纺织品", "电机", "食品", "家具", "化工原料", "注塑件")

# Per category: the matter, with slots for the firm's own details.
MATTERS: dict[str, tuple[str, ...]] = {
    "registration": (
        "公司要把经营场所搬到{town}新厂，执照地址变更在网上一直办不成功",
        "我们打算新增{product}销售的经营项目，变更营业范围需要什么手续",
        "老板换人了，法定代表人变更登记要本人到窗口吗",
        "公司不做了想关掉，注销流程太复杂，能不能指导一下",
        "股东退出，股权变更登记材料被退回了两次",
        "想在{town}开一家分公司，分支机构登记要准备哪些东西",
    ),
    "annual_report": (
        "我们去年年度报告漏报了，现在显示在异常名录里，影响投标",
        "年度报告已经补报了，什么时候能把经营异常标记去掉",
        "年报里员工人数报错了，公示出去的数据能不能修改",
        "信用网站上还挂着我们以前的处罚信息，想做信用修复",
        "不会填年度报告里社保那一栏，系统一直提示不一致",
    ),
    "tax": (
        "出口退税申请交上去两个月了还没有退下来",
        "开出去的专用发票金额开错了，客户已经抵扣了怎么处理",
        "电子税务局上报税总是报错，提示数据校验不通过",
        "今年研发投入不少，想问加计扣除在申报时怎么操作",
        "税务通知我们补税加滞纳金，我们觉得计算有问题",
        "留抵的税款能不能退，现金流很紧张",
    ),
    "social_security": (
        "有个工人在车间被机器压伤了手，工伤怎么认定",
        "新来的员工社保增员一直失败，说在老家有参保",
        "经营困难，社保费能不能缓一缓再交",
        "有员工离职后说我们少发了加班费，去劳动部门投诉了",
        "稳岗补贴今年怎么还没到账",
    ),
    "talent": (
        "年底订单多，车间还缺三十来个操作工，到哪里招",
        "刚引进了两个研究生，住房补贴怎么申请",
        "想让员工去考焊工证，培训费用政府能补多少",
        "外地员工的孩子想在{town}上学，学位很难落实",
        "想跟技工学校合作定向培养，能不能帮忙对接",
    ),
    "finance": (
        "银行贷款下个月到期，续贷的钱一时凑不齐，希望有过桥资金",
        "想用专利去银行做质押贷款，不知道哪家银行能办",
        "银行说我们抵押的厂房评估值不够，贷不到需要的额度",
        "我们是第一次贷款，听说有首贷贴息",
        "订单做了很多，货款回笼慢，流动资金周转不过来",
    ),
    "land": (
        "生产规模扩大了，想在{town}再拿二十亩工业用地",
        "租的厂房快到期，房东不续租，找不到新厂房",
        "厂房盖了好几年了，产权证还是办不出来",
        "说我们是低效用地，要整治，想了解改造提升怎么办",
        "想在自己厂区加盖一层，容积率能不能提高",
    ),
    "construction": (
        "新厂房一号车间先建好了，能不能单独先验收投产",
        "施工许可证的审批一直卡着，项目开不了工",
        "消防验收提的问题都整改了，请安排复验",
        "技改项目要备案，几个部门互相推",
        "厂区内新建仓库，规划手续不知道要不要办",
    ),
    "utilities": (
        "新上了生产线，用电负荷不够，申请增容一直在排队",
        "这个月厂里停了好几次电，机器都坏了",
        "厂区水压太低，冷却塔没法正常用",
        "燃气管道什么时候能接到我们厂，想换掉燃煤锅炉",
        "厂里网络天天掉线，影响接单",
    ),
    "environment": (
        "排污证快到期了，续证要准备哪些检测数据",
        "环保检查说我们喷漆车间的废气处理不达标",
        "危废一直没人来收，仓库快放不下了",
        "周边居民说我们的机器噪声太大，去投诉了",
        "能耗指标太紧，想扩产能却被卡住",
    ),
    "policy": (
        "去年申报的技术改造补助到现在还没有拨付",
        "我们评上了专精特新，奖励资金什么时候兑现",
        "有哪些扶持政策我们这样的{product}企业能享受",
        "政策申报材料要审计报告，小企业没有怎么办",
        "免申即享的奖励我们符合条件，但没有收到钱",
    ),
    "technology": (
        "想申请高新技术企业认定，不知道研发费用够不够",
        "新产品要做盐雾和寿命测试，本地哪里能检测",
        "产品有个技术难题，想请大学老师来指导",
        "创新券能不能用来付检测费",
        "想借用研究院的设备做样品分析",
    ),
    "ip": (
        "网店上有人卖假冒我们商标的{product}",
        "我们的商标被别人抢先注册了，怎么处理",
        "发明专利申请了两年还没下来，能不能加快",
        "竞争对手仿照我们的外观设计，怎么维权",
        "想参与制定行业标准，有没有渠道",
    ),
    "trade": (
        "出口的货在港口被海关查验，耽误了交货期",
        "国外客户欠了货款不付，出口信用保险怎么理赔",
        "海运费和柜子都紧张，出货困难",
        "想去参加国外的展会，有没有补贴",
        "原产地证在哪里办理比较快",
    ),
    "safety": (
        "安监部门检查说我们危化品存放不规范，要求整改",
        "消防检查提出仓库要做防火分隔，不知道怎么改",
        "叉车年检过期了，去哪里预约检验",
        "想请专家来厂里查一查安全隐患",
        "粉尘车间的除尘设备要改造，有没有补助",
    ),
    "traffic": (
        "{town}工业区的路坏得厉害，大货车开不进来",
        "厂门口附近没有公交，工人上下班不方便",
        "园区路灯坏了很久没人修，晚上很黑",
        "送货的货车白天进不了城区",
        "门口新修的路把厂区出入口挡了",
    ),
    "legal": (
        "客户拖欠我们{amount}万元货款一年多了，怎么追",
        "和供应商合同有纠纷，想先调解",
        "被离职员工告了，不知道怎么应诉",
        "想请个法律顾问，有没有免费的",
        "对罚款决定不服，想申请复议",
    ),
    "other": (
        "想了解一下企服驿站能帮企业办哪些事",
        "给窗口提个意见，希望中午也能办业务",
        "不知道我们这个事该找哪个部门",
        "想表扬驿站的工作人员服务热情",
    ),
}
ASKS = ("", "请问怎么办？", "该找哪个部门？", "希望给个明确答复。", "能否协调一下？", "请帮忙跟进。", "有什么政策吗？")
ANSWERS = {
    "satisfied": "已联系企业说明办理途径，问题已解决。",
    "basically": "已答复政策口径，部分事项需企业补充材料后办理。",
    "dissatisfied": "已答复，因政策限制暂无法满足企业要求。",
}


def _pick(rng: np.random.Generator, items, p=None):
    return items[int(rng.choice(len(items), p=p))]


def make(registry: pl.DataFrame, first_year: int, as_of: dt.date, rng: np.random.Generator,
         per_entity_year: float = 0.1) -> pl.DataFrame:
    """The requests submitted from 1 January of ``first_year`` to ``as_of`` (``per_entity_year``
    requests per entity a year; a benchmark asks for more)."""
    days = (as_of - dt.date(first_year, 1, 1)).days + 1
    n = max(1, int(registry.height * per_entity_year * days / 365))
    codes = [c.code for c in CATEGORIES]
    share = np.array([SHARE[c] for c in codes])
    share = share / share.sum()
    departments = {c.code: c.department for c in CATEGORIES}
    names = registry["name"].to_list()
    usccs = registry["uscc"].to_list()
    reg_towns = registry["town"].to_list()
    channel_p = np.array([p for _, p in CHANNELS])
    rows = []
    for i in range(n):
        cat = codes[int(rng.choice(len(codes), p=share))]
        who = int(rng.integers(0, len(usccs)))
        anonymous = rng.random() < 0.08
        details = {"name": names[who], "town": reg_towns[who], "product": _pick(rng, PRODUCTS),
                   "amount": int(rng.integers(5, 300))}
        opener = _pick(rng, OPENERS).format(**details)
        matter = _pick(rng, MATTERS[cat]).format(**details)
        text = f"{opener}{matter}{'，' if rng.random() < 0.5 else '。'}{_pick(rng, ASKS)}{_pick(rng, CLOSERS)}".strip()
        text = text.replace("，。", "。").replace("。。", "。")
        submitted = dt.datetime.combine(dt.date(first_year, 1, 1) + dt.timedelta(days=int(rng.integers(0, days))),
                                        dt.time(int(rng.integers(8, 18)), int(rng.integers(0, 60))))
        age = (as_of - submitted.date()).days
        closed = age > 30 or (age > 1 and rng.random() < age / 30)
        closed_at = submitted + dt.timedelta(days=float(rng.uniform(0.5, min(max(age, 1), 14)))) if closed else None
        satisfaction = (_pick(rng, ("satisfied", "basically", "dissatisfied"), [0.82, 0.12, 0.06])
                        if closed and rng.random() < 0.8 else "")
        channel = CHANNELS[int(rng.choice(len(CHANNELS), p=channel_p))][0]
        rows.append({
            "request_id": f"{ {'hotline': 'RX', 'station': 'YZ', 'portal': 'WS', 'visit': 'ZF', 'open311': 'JK'}[channel]}"
                          f"{submitted:%Y%m%d}{i:06d}".replace(" ", ""),
            "uscc": "" if anonymous else usccs[who],
            "submitted_at": submitted.strftime("%Y-%m-%d %H:%M:%S"),
            "channel": channel,
            "town": reg_towns[who],
            "category": "" if rng.random() < 0.05 else cat,
            "text": text,
            "department": departments[cat] if rng.random() < 0.9 else "",
            "status": "closed" if closed else "open",
            "closed_at": closed_at.strftime("%Y-%m-%d %H:%M:%S") if closed_at else "",
            "satisfaction": satisfaction,
        })
    return pl.DataFrame(rows).sort("submitted_at")
