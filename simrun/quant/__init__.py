"""Quantization experiments: convert a float model under named schemes and A/B them.

- convert.py   the one converter (Keras or SavedModel -> .tflite per scheme), deterministic,
               with the settings it used written beside each model
- dataset.py   representative datasets (.npy/.npz, a folder of images, random[:SEED])
- examples.py  the built-in example models of `simrun example`
- accuracy.py  a quantized model's error against the float model, at its outputs and per layer
- ab.py        the A/B: quantize, run the differential matrix per scheme, measure both errors
"""
