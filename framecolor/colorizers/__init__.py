"""Colouring modes: the infer stages the colouring stream runs, all behind one protocol
(:class:`~framecolor.colorizers.base.InferStage`). Which one colours an input is chosen in one place,
:func:`framecolor.job.choose_colorizer`.

* ``base``: the protocol, and the batch and render-size rules every stage follows;
* ``automatic``: the generator predicting ab from L (plain runs; what reference mode falls back on);
* ``reference``: shots planned in a first pass, keys placed and validated, render-size hint maps
  (the base of the line-art reference mode);
* ``carrying``: reference mode at full resolution, the keys' own colours carried along their shots;
* ``lineart``, ``regions``, ``lineart_reference``: the two-stage line-art models, paint-bucket region fill, and
  reference mode on line art;
* ``inputkind``: ``--input-kind`` (gray or line art), decided per input for ``auto``.

To add a colouring mode: a class with the protocol's attributes and methods in a module here, and one branch in
:func:`framecolor.job.choose_colorizer`.
"""
