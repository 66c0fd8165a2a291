from qifu import config, demo_filling


def demo(request):
    """Whether this is `qifu demo`: every page then says so (a simulated county, and a filing
    season played ahead of today's date), and, while the demo still fills the modules' data
    behind the server, how far it has come."""
    if not config.is_demo():
        return {"demo": False}
    return {"demo": True, "demo_filling": demo_filling.state()}
