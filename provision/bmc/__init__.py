"""Day-0 work on the BMCs over Redfish: inventory, firmware and BIOS audits, power, boot,
virtual media.

Data flows one way here too: targets (from the site spec) -> one Redfish
session per BMC (``client``) run side by side under a deadline (``fanout``)
-> frozen inventory records (``inventory``) -> pure comparisons against the
spec (``compare``, ``firmware``) -> the CLI renders them.
"""
