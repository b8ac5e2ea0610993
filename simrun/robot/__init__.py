"""Robot Framework support: the keyword library `simrun.robot.SimrunLibrary`.

Use it in a suite with ``Library    simrun.robot.SimrunLibrary``; keyword
documentation: ``python -m robot.libdoc simrun.robot.SimrunLibrary docs/SimrunLibrary.html``.
"""
