*** Settings ***
Documentation     The quantization A/B on the host: the example detector quantized per channel
...               and per tensor, each compared with its float model (quantization error) and
...               run on desktop TFLite's reference kernels and host TFLM (implementation error,
...               bit-exact between these two). Needs TensorFlow; no emulator, no TFLM sources.
Library           OperatingSystem
Resource          resources/simrun.resource


*** Test Cases ***
Per-Channel And Per-Tensor Side By Side
    ${keras} =    Write Example Models    ${OUTPUT DIR}/quant_example
    Run Quantization AB    ${keras}    dataset=${OUTPUT DIR}/quant_example/detector_calibration.npy
    ...    count=1    backends=tflite-reference,tflm-host    diagnose=${False}
    Quantization Error Should Be Below    0.05
    ${pc} =    Get Quantization Error    per-channel    metric=cosine
    Should Be True    ${pc} > 0.99
    Implementation Mismatch Ratio Should Be At Most    0    tflite-reference    tflm-host
    Scheme Should Agree At Least As Well    per-tensor    per-channel    tflite-reference    tflm-host
    Run Keyword And Expect Error    *is not below 1e-06*
    ...    Quantization Error Should Be Below    0.000001    scheme=per-tensor
    Run Keyword And Expect Error    *no scheme 'int16x8'*
    ...    Get Quantization Error    int16x8
    ${html} =    Write AB Report    ${OUTPUT DIR}/quant_ab
    File Should Exist    ${html}
    File Should Exist    ${OUTPUT DIR}/quant_ab/per-tensor/report.html
