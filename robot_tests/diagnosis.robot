*** Settings ***
Documentation     Diagnosis on the host: which layers introduce error themselves and why.
...               Desktop LiteRT's optimized path (XNNPACK) differs from its reference kernels
...               on micro_speech's DEPTHWISE_CONV_2D; isolated, that layer is the one that
...               introduces the error, and LiteRT without XNNPACK agrees with the reference.
...               No emulator and no TFLM sources needed.
Resource          resources/simrun.resource
Suite Setup       Skip Unless Real Models


*** Test Cases ***
XNNPACK Introduces The Depthwise Difference In Micro Speech
    Load Model    ${MODELS}/micro_speech_quantized.tflite
    Set Random Input    seed=1
    Diagnose Against    tflite-reference    tflite-optimized    tflm-host
    Cause Of Layer Should Be    DEPTHWISE_CONV_2D    kernel    tflite-reference    tflite-optimized
    Layer Should Not Introduce Error    FULLY_CONNECTED    tflite-reference    tflite-optimized
    Layer Should Not Introduce Error    DEPTHWISE_CONV_2D    tflite-reference    tflm-host
    Cause Of Layer Should Be    0:1    none    tflite-reference    tflm-host
    ${text} =    Get Diagnosis Summary    tflite-reference    tflite-optimized
    Should Start With    ${text}    tflite-reference vs tflite-optimized: 1 of 4 layers introduce error, all DEPTHWISE_CONV_2D, cause kernel
    Run Keyword And Expect Error    *1 layer(s) introduce error*XNNPACK*
    ...    Layer Should Not Introduce Error    0:1    tflite-reference    tflite-optimized
    Write Reports    ${OUTPUT DIR}/micro_speech_diagnosis
