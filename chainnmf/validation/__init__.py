"""Checks of user input at the public entry points, run on the host before tracing.

:class:`~chainnmf.schema.Model`, :meth:`Model.fit <chainnmf.schema.Model.fit>`,
:func:`~chainnmf.fit.fit` and :func:`~chainnmf.fit.fit_restarts` call these
checks before anything is traced or compiled. A failure raises ``ValueError``
(a bad value or shape) or ``TypeError`` (a bad type) with a message that names
the table or factor, what was expected and what was found.

Data tables may be dense (NumPy or JAX arrays, or anything ``numpy.asarray``
accepts), scipy.sparse matrices or ``jax.experimental.sparse.BCOO`` arrays.
Sparse tables are checked through their stored values and indices and are
never densified. No check modifies its input.

What is accepted, and what then happens:

* Integer and boolean tables and factors are converted to the fit's floating
  dtype, with one warning that lists them.
* Float64 input while JAX's x64 mode is off runs in float32, with a warning.
* A table with zero rows or zero columns adds nothing to the loss. The factor
  ``H_t`` of a table with zero rows is set to zero by the first sweep, because
  no data constrain it.
* An all-zero column ``l`` of a table ``t`` makes column ``l`` of ``H_t`` exactly
  zero after the first sweep, because its ``∇⁻`` is zero.
* A row ``i`` that is all zero in every table without a parent makes row ``i``
  of ``W`` exactly zero after the first sweep, for the same reason.
* Rows of a linked table whose path product ``Z_t`` is zero for every ``W``
  (the matching columns of the parent are all zero, or reach only such rows)
  are modeled as zero whatever the factors. Under the Frobenius loss they add
  the constant ``‖V_row‖²``. Under KL their positive entries add the constant
  ``−V log(tiny)`` (see :mod:`chainnmf.numerics`), so they are reported with
  a warning.
* Exact zeros in an initial factor stay zero under multiplicative updates.
  A start whose factor is all zero, or whose component (a column of ``W`` or a
  row of ``H_t``) is all zero while the data are not, is rejected. A start
  with all-zero rows of ``W`` or columns of ``H_t`` gets a warning.

Each module checks one kind of input:

* :mod:`~chainnmf.validation.arrays`: tables, factors and their stored values.
* :mod:`~chainnmf.validation.dtypes`: the fit's dtype, and overflow in it.
* :mod:`~chainnmf.validation.options`: fit options, rank and seed.
* :mod:`~chainnmf.validation.model`: the tables of a model and their links.
* :mod:`~chainnmf.validation.factors`: initial factors and stacked starts.

:mod:`~chainnmf.validation.reporting` issues their warnings.
"""

from chainnmf.validation.arrays import ArrayInfo as ArrayInfo
from chainnmf.validation.arrays import check_array as check_array
from chainnmf.validation.arrays import check_data as check_data
from chainnmf.validation.arrays import sparse_coordinates as sparse_coordinates
from chainnmf.validation.arrays import stored_values as stored_values
from chainnmf.validation.dtypes import check_dtype as check_dtype
from chainnmf.validation.dtypes import check_magnitudes as check_magnitudes
from chainnmf.validation.dtypes import check_range as check_range
from chainnmf.validation.dtypes import resolve_dtype as resolve_dtype
from chainnmf.validation.factors import check_factors as check_factors
from chainnmf.validation.factors import check_loss_shapes as check_loss_shapes
from chainnmf.validation.factors import check_model_start as check_model_start
from chainnmf.validation.model import check_model as check_model
from chainnmf.validation.options import FitOptions as FitOptions
from chainnmf.validation.options import check_fit_options as check_fit_options
from chainnmf.validation.options import check_rank as check_rank
from chainnmf.validation.options import check_seed as check_seed
from chainnmf.validation.reporting import warn as warn
