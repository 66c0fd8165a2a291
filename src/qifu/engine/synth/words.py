"""Word pools for synthetic names and addresses. Made-up combinations only."""

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国文辉力斌波宁欣怡浩宇晨阳鑫雪梅兰亮飞琳红春海峰志刚立新玉凤云俊")
BRAND = list("华鑫恒瑞达丰盛泰隆昌宏远兴旺佳宝利新金银凯越鸿锦荣源通顺安康富祥和美嘉益诚信德博创力")
ROADS = ["新城大道", "三北大街", "孙塘路", "峙山路", "青少年宫路", "明州路", "南二环线", "北三环线", "慈甬路", "开发大道",
         "沿海中路", "潮塘路", "界牌路", "镇东路", "人民路", "文化路", "工业园路", "环城北路"]

# Industry code -> (weight by entity type, business word for names, activity description).
INDUSTRIES = {
    # enterprises: a Cixi-like manufacturing economy
    "C3851": ({"enterprise": 4.0}, "电器", "家用制冷电器具制造"),
    "C3852": ({"enterprise": 2.0}, "电器", "家用空调器制造"),
    "C3853": ({"enterprise": 2.0}, "电器", "电风扇、取暖器制造"),
    "C3854": ({"enterprise": 3.0}, "电器", "小家电、厨房电器制造"),
    "C3855": ({"enterprise": 1.5}, "电器", "清洁电器制造"),
    "C3857": ({"enterprise": 4.0, "individual": 0.8}, "电器配件", "家用电器配件加工"),
    "C3859": ({"enterprise": 2.0}, "电器", "家用电器制造"),
    "C3451": ({"enterprise": 4.0, "individual": 0.5}, "轴承", "滚动轴承制造"),
    "C3452": ({"enterprise": 1.0}, "轴承", "滑动轴承制造"),
    "C2822": ({"enterprise": 1.5}, "化纤", "涤纶纤维制造"),
    "C2821": ({"enterprise": 0.8}, "化纤", "锦纶纤维制造"),
    "C1711": ({"enterprise": 1.5}, "纺织", "棉纺纱加工"),
    "C1751": ({"enterprise": 1.5, "individual": 0.5}, "纺织", "化纤织造加工"),
    "C1810": ({"enterprise": 2.0, "individual": 0.8}, "服饰", "服装加工"),
    "C1820": ({"enterprise": 1.0}, "针织", "针织服装制造"),
    "C2927": ({"enterprise": 2.5, "individual": 0.6}, "塑业", "日用塑料制品制造"),
    "C2929": ({"enterprise": 3.0, "individual": 0.8}, "塑料制品", "塑料零件加工"),
    "C1951": ({"enterprise": 0.8}, "鞋业", "皮鞋制造"),
    "C1952": ({"enterprise": 1.2, "individual": 0.3}, "鞋业", "布鞋制造"),
    "C1954": ({"enterprise": 1.0}, "鞋业", "塑料鞋制造"),
    "C3360": ({"enterprise": 1.5, "individual": 0.5}, "金属", "金属表面处理"),
    "C3484": ({"enterprise": 4.0, "individual": 1.5}, "机械", "机械零部件加工"),
    "C3872": ({"enterprise": 1.5}, "照明", "照明灯具制造"),
    "E4710": ({"enterprise": 1.0}, "建设", "房屋建筑施工"),
    "E5012": ({"enterprise": 1.5, "individual": 1.0}, "装饰", "住宅装饰装修"),
    "F5132": ({"enterprise": 3.0, "individual": 1.5}, "服饰", "服装批发"),
    "F5137": ({"enterprise": 5.0, "individual": 1.0}, "电器", "家用电器批发"),
    "F5181": ({"enterprise": 4.0}, "贸易", "进出口贸易代理"),
    "F5211": ({"individual": 3.0}, "百货", "百货零售"),
    "F5212": ({"enterprise": 1.0, "individual": 4.0}, "超市", "超市零售"),
    "F5223": ({"individual": 5.0}, "果蔬", "水果蔬菜零售"),
    "F5232": ({"individual": 6.0}, "服饰", "服装零售"),
    "F5292": ({"enterprise": 2.0, "individual": 4.0}, "电子商务", "网上零售"),
    "G5431": ({"enterprise": 3.0, "individual": 5.0}, "物流", "道路货物运输"),
    "H6210": ({"enterprise": 1.0, "individual": 8.0}, "饭店", "正餐服务"),
    "H6220": ({"individual": 6.0}, "快餐", "快餐服务"),
    "H6231": ({"individual": 2.0}, "茶馆", "茶馆服务"),
    "H6291": ({"individual": 6.0}, "小吃", "小吃服务"),
    "I6513": ({"enterprise": 2.0}, "科技", "应用软件开发"),
    "O8040": ({"individual": 8.0}, "美发", "理发及美容服务"),
    "O8111": ({"enterprise": 0.5, "individual": 5.0}, "汽修", "汽车修理与维护"),
    # cooperatives
    "A0141": ({"cooperative": 4.0}, "蔬菜", "蔬菜种植及销售"),
    "A0159": ({"cooperative": 3.0}, "果业", "杨梅、葡萄种植及销售"),
    "A0313": ({"cooperative": 1.0}, "畜牧", "生猪养殖"),
    "A0412": ({"cooperative": 1.5}, "水产", "淡水养殖"),
}

# Revenue per employee (万元/person/year, median) by industry section: a heavy-tailed economy.
REVENUE_PER_EMPLOYEE = {"C": 70.0, "E": 60.0, "F": 180.0, "G": 50.0, "H": 20.0, "I": 45.0, "O": 15.0, "A": 12.0}
