*** Settings ***
Documentation     A scenario designed to FAIL: it runs person_detect on desktop
...               TFLite's reference kernels, which refuse the model, without
...               expecting the refusal. tests/test_robot.py runs it and checks
...               that robot exits non-zero with this BackendError. The normal
...               suite leaves it out with --exclude expected-failure.
Resource          ../resources/simrun.resource
Test Tags         expected-failure


*** Test Cases ***
Desktop TFLite Reference Runs Person Detect
    Load Model    ${MODELS}/person_detect.tflite
    Set Random Input    seed=1
    Run Backend    tflite-reference
