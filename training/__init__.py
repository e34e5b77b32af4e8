"""GAN training for framecolor generators: data sets, synthetic cartoons, PatchGAN, losses, the train loop.

Builds on :mod:`framecolor` (models, colour conversions, checkpoints); :mod:`framecolor` never imports this
package.  The ``train`` Click command lives in :mod:`training.cli` and is attached to the ``framecolor``
group lazily, by import path.
"""
