"""chainnmf: nonnegative matrix factorization of linked tables in JAX.

A joint loss is a list of signed terms; :func:`mu_step` splits the gradient of
each factor block into its positive and negative parts and applies the
multiplicative update ``θ ← θ ⊙ ∇⁻ / ∇⁺``. :class:`Model` builds the terms for
vanilla, multi-view and chained NMF from a tree of linked tables.
"""

from chainnmf import check as check
from chainnmf import distributed as distributed
from chainnmf import oracles as oracles
from chainnmf import sparse as sparse
from chainnmf.check import check_term_signs as check_term_signs
from chainnmf.check import compare_with_rules as compare_with_rules
from chainnmf.checkpoint import load_result as load_result
from chainnmf.checkpoint import save_result as save_result
from chainnmf.cluster import ari as ari
from chainnmf.cluster import labels as labels
from chainnmf.cluster import nmi as nmi
from chainnmf.cluster import top_features as top_features
from chainnmf.fit import CollapseWarning as CollapseWarning
from chainnmf.fit import ConvergenceWarning as ConvergenceWarning
from chainnmf.fit import FitResult as FitResult
from chainnmf.fit import FitState as FitState
from chainnmf.fit import NonFiniteError as NonFiniteError
from chainnmf.fit import Status as Status
from chainnmf.fit import fit as fit
from chainnmf.fit import fit_restarts as fit_restarts
from chainnmf.mu import make_step as make_step
from chainnmf.mu import mu_step as mu_step
from chainnmf.mu import split_gradient as split_gradient
from chainnmf.mu import update_block as update_block
from chainnmf.schema import Model as Model
from chainnmf.schema import Table as Table
from chainnmf.schema import chain as chain
from chainnmf.schema import factor_name as factor_name
from chainnmf.schema import multiview as multiview
from chainnmf.schema import vanilla as vanilla
from chainnmf.sparse import SparseMatrix as SparseMatrix
from chainnmf.sparse import sparse_matrix as sparse_matrix
from chainnmf.terms import Loss as Loss
from chainnmf.terms import Term as Term
from chainnmf.terms import total as total
from chainnmf.terms import trace as trace

__version__ = "0.1.0"
