"""企服 qifu: enterprise-service platform for county market-regulation bureaus."""

__version__ = "0.1.0"
