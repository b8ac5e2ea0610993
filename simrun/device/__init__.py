"""The emulated device: the targets table, pinned sources and the firmware build,
the ELF's ABI symbols, the GDB remote client, the emulator launchers and the
Session that injects a model and reads every operator's outputs back.

Imports only from the base modules (simrun.errors, simrun.capture, simrun.model);
nothing here knows about host interpreters, comparison or reports.
"""
