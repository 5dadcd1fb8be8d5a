"""The DCS stand-in: the DCS v2 and IAM token APIs of Open Telekom Cloud / Huawei Cloud, served locally."""
