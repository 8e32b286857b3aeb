#!/usr/bin/env python3
"""Deterministic generator for llmkit's embedded data.

A small synthetic world of fictional facts (people, towns, rivers, mountains, companies,
schools, dishes, animals) is rendered into English prose for pretraining, and the SAME facts
are turned into extractive QA, summarization and English-French translation sets. A tiny
model pretrained on the corpus has therefore seen the vocabulary and style of every
downstream task, and nothing is copied from real text. Standard library only, so it runs
anywhere Python does, and the output depends on nothing but the seed.

    python data/generate.py [--out DIR] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPLITS = ("train", "validation", "test")
KINDS = ("person", "town", "river", "mountain", "company", "school", "dish", "animal")
COUNTS = {
    "person": 1800,
    "town": 320,
    "river": 70,
    "mountain": 90,
    "company": 300,
    "school": 160,
    "dish": 200,
    "animal": 160,
}
N_REGIONS = 12
N_SEAS = 5
# Corpus documents per entity: sized so the corpus lands near 3 MB.
DOCS_PER_ENTITY = {
    "person": 3,
    "town": 5,
    "river": 4,
    "mountain": 4,
    "company": 4,
    "school": 4,
    "dish": 4,
    "animal": 4,
    "region": 6,
}
TASK_SIZES = {
    "qa": {"train": 4000, "validation": 300, "test": 300},
    "summarization": {"train": 2000, "validation": 200, "test": 200},
    "translation": {"train": 4000, "validation": 300, "test": 300},
}

# --------------------------------------------------------------------------------------
# Vocabulary: every entry carries its English and hand-written French rendering.
# --------------------------------------------------------------------------------------

# (English, French masculine, French feminine)
PROFESSIONS = (
    ("baker", "boulanger", "boulangère"),
    ("carpenter", "charpentier", "charpentière"),
    ("teacher", "enseignant", "enseignante"),
    ("engineer", "ingénieur", "ingénieure"),
    ("nurse", "infirmier", "infirmière"),
    ("painter", "peintre", "peintre"),
    ("farmer", "agriculteur", "agricultrice"),
    ("boat builder", "constructeur de bateaux", "constructrice de bateaux"),
    ("librarian", "bibliothécaire", "bibliothécaire"),
    ("architect", "architecte", "architecte"),
    ("doctor", "médecin", "médecin"),
    ("lawyer", "avocat", "avocate"),
    ("potter", "potier", "potière"),
    ("weaver", "tisserand", "tisserande"),
    ("chemist", "chimiste", "chimiste"),
    ("merchant", "marchand", "marchande"),
    ("translator", "traducteur", "traductrice"),
    ("musician", "musicien", "musicienne"),
    ("journalist", "journaliste", "journaliste"),
    ("astronomer", "astronome", "astronome"),
    ("gardener", "jardinier", "jardinière"),
    ("blacksmith", "forgeron", "forgeronne"),
    ("sailor", "marin", "marin"),
    ("cook", "cuisinier", "cuisinière"),
    ("accountant", "comptable", "comptable"),
    ("botanist", "botaniste", "botaniste"),
    ("clockmaker", "horloger", "horlogère"),
    ("mapmaker", "cartographe", "cartographe"),
    ("glassblower", "souffleur de verre", "souffleuse de verre"),
    ("bookbinder", "relieur", "relieuse"),
    ("tailor", "tailleur", "tailleuse"),
    ("mechanic", "mécanicien", "mécanicienne"),
    ("pharmacist", "pharmacien", "pharmacienne"),
    ("photographer", "photographe", "photographe"),
    ("beekeeper", "apiculteur", "apicultrice"),
    ("printer", "imprimeur", "imprimeuse"),
    ("surveyor", "géomètre", "géomètre"),
    ("brewer", "brasseur", "brasseuse"),
)
# (English gerund phrase, French infinitive phrase)
HOBBIES = (
    ("playing the fiddle", "jouer du violon"),
    ("growing tomatoes", "cultiver des tomates"),
    ("collecting stamps", "collectionner des timbres"),
    ("sailing", "faire de la voile"),
    ("playing chess", "jouer aux échecs"),
    ("painting birds", "peindre des oiseaux"),
    ("climbing", "faire de l'escalade"),
    ("baking bread", "faire du pain"),
    ("writing poems", "écrire des poèmes"),
    ("fishing", "pêcher"),
    ("knitting scarves", "tricoter des écharpes"),
    ("watching the stars", "observer les étoiles"),
    ("riding horses", "monter à cheval"),
    ("keeping bees", "élever des abeilles"),
    ("singing in a choir", "chanter dans une chorale"),
    ("running", "courir"),
    ("swimming", "nager"),
    ("carving wood", "sculpter le bois"),
    ("reading old maps", "lire de vieilles cartes"),
    ("playing cards", "jouer aux cartes"),
    ("dancing", "danser"),
    ("cycling", "faire du vélo"),
    ("walking in the hills", "se promener dans les collines"),
    ("building model ships", "construire des maquettes de bateaux"),
    ("collecting shells", "collectionner des coquillages"),
    ("playing the flute", "jouer de la flûte"),
    ("learning languages", "apprendre des langues"),
    ("making jam", "faire de la confiture"),
)
# (English, French with its partitive article)
PRODUCTS = (
    ("copper kettles", "des bouilloires en cuivre"),
    ("wool blankets", "des couvertures en laine"),
    ("bicycles", "des vélos"),
    ("clocks", "des horloges"),
    ("paper", "du papier"),
    ("glass bottles", "des bouteilles en verre"),
    ("leather boots", "des bottes en cuir"),
    ("sailcloth", "de la toile à voile"),
    ("pianos", "des pianos"),
    ("oil lamps", "des lampes à huile"),
    ("cheese", "du fromage"),
    ("soap", "du savon"),
    ("maps", "des cartes"),
    ("rope", "de la corde"),
    ("roof tiles", "des tuiles"),
    ("umbrellas", "des parapluies"),
    ("telescopes", "des télescopes"),
    ("candles", "des bougies"),
    ("barrels", "des tonneaux"),
    ("sewing machines", "des machines à coudre"),
    ("radios", "des radios"),
    ("bricks", "des briques"),
    ("fishing nets", "des filets de pêche"),
    ("ink", "de l'encre"),
    ("tea", "du thé"),
    ("bells", "des cloches"),
    ("wooden toys", "des jouets en bois"),
    ("chocolate", "du chocolat"),
    ("pencils", "des crayons"),
    ("garden tools", "des outils de jardin"),
)
COMPANY_SUFFIXES = (
    "Works",
    "& Sons",
    "Mills",
    "Company",
    "Brothers",
    "Trading",
    "Foundry",
    "Workshops",
    "Industries",
    "Makers",
)
# (English, French with its definite article)
SUBJECTS = (
    ("mathematics", "les mathématiques"),
    ("music", "la musique"),
    ("painting", "la peinture"),
    ("languages", "les langues"),
    ("chemistry", "la chimie"),
    ("history", "l'histoire"),
    ("astronomy", "l'astronomie"),
    ("engineering", "l'ingénierie"),
    ("medicine", "la médecine"),
    ("law", "le droit"),
    ("farming", "l'agriculture"),
    ("navigation", "la navigation"),
    ("architecture", "l'architecture"),
    ("botany", "la botanique"),
    ("philosophy", "la philosophie"),
)
# (English suffix, French head noun, grammatical gender)
SCHOOL_TYPES = (
    ("Academy", "Académie", "f"),
    ("College", "Collège", "m"),
    ("Institute", "Institut", "m"),
    ("School", "École", "f"),
    ("Lyceum", "Lycée", "m"),
)
LANDMARKS = (
    ("Bridge", "pont", "m"),
    ("Tower", "tour", "f"),
    ("Gate", "porte", "f"),
    ("Fountain", "fontaine", "f"),
    ("Library", "bibliothèque", "f"),
    ("Lighthouse", "phare", "m"),
    ("Market Hall", "halle", "f"),
    ("Abbey", "abbaye", "f"),
    ("Mill", "moulin", "m"),
    ("Observatory", "observatoire", "m"),
    ("Theatre", "théâtre", "m"),
    ("Garden", "jardin", "m"),
    ("Castle", "château", "m"),
)
DISH_TYPES = (
    ("stew", "ragoût", "m"),
    ("soup", "soupe", "f"),
    ("pie", "tourte", "f"),
    ("cake", "gâteau", "m"),
    ("flatbread", "galette", "f"),
    ("pudding", "pudding", "m"),
    ("salad", "salade", "f"),
    ("porridge", "bouillie", "f"),
    ("pastry", "pâtisserie", "f"),
    ("sausage", "saucisse", "f"),
    ("bread", "pain", "m"),
    ("omelette", "omelette", "f"),
)
# (English, French bare noun, French with definite article)
INGREDIENTS = (
    ("lentils", "lentilles", "les lentilles"),
    ("smoked fish", "poisson fumé", "le poisson fumé"),
    ("barley", "orge", "l'orge"),
    ("pears", "poires", "les poires"),
    ("chestnuts", "châtaignes", "les châtaignes"),
    ("goat cheese", "fromage de chèvre", "le fromage de chèvre"),
    ("mushrooms", "champignons", "les champignons"),
    ("honey", "miel", "le miel"),
    ("leeks", "poireaux", "les poireaux"),
    ("plums", "prunes", "les prunes"),
    ("walnuts", "noix", "les noix"),
    ("cabbage", "chou", "le chou"),
    ("rye flour", "farine de seigle", "la farine de seigle"),
    ("lamb", "agneau", "l'agneau"),
    ("beans", "haricots", "les haricots"),
    ("apples", "pommes", "les pommes"),
    ("onions", "oignons", "les oignons"),
    ("trout", "truite", "la truite"),
    ("pumpkin", "potiron", "le potiron"),
    ("rice", "riz", "le riz"),
    ("beetroot", "betterave", "la betterave"),
    ("cream", "crème", "la crème"),
    ("eggs", "œufs", "les œufs"),
    ("almonds", "amandes", "les amandes"),
)
OCCASIONS = (
    ("in winter", "en hiver"),
    ("in spring", "au printemps"),
    ("in summer", "en été"),
    ("in autumn", "en automne"),
    ("at weddings", "lors des mariages"),
    ("at harvest festivals", "lors des fêtes de la moisson"),
    ("on cold mornings", "les matins froids"),
    ("on holidays", "les jours de fête"),
    ("after long walks", "après de longues promenades"),
    ("on market days", "les jours de marché"),
)
# (English, French masculine): the French goût and the adverbial use are masculine.
TASTES = (
    ("sweet", "sucré"),
    ("salty", "salé"),
    ("sour", "acide"),
    ("spicy", "épicé"),
    ("bitter", "amer"),
    ("smoky", "fumé"),
    ("rich", "riche"),
    ("mild", "doux"),
)
TEMPS = (("hot", "chaud"), ("cold", "froid"), ("warm", "tiède"))
# (English, English plural, French noun, gender, what covers its body)
ANIMAL_CLASSES = (
    ("bird", "birds", "oiseau", "m", "feathers"),
    ("fish", "fish", "poisson", "m", "scales"),
    ("lizard", "lizards", "lézard", "m", "scales"),
    ("beetle", "beetles", "scarabée", "m", "wings"),
    ("frog", "frogs", "grenouille", "f", "spots"),
    ("snake", "snakes", "serpent", "m", "scales"),
    ("moth", "moths", "papillon de nuit", "m", "wings"),
    ("rodent", "rodents", "rongeur", "m", "ears"),
    ("deer", "deer", "cerf", "m", "antlers"),
    ("owl", "owls", "chouette", "f", "feathers"),
    ("turtle", "turtles", "tortue", "f", "markings"),
    ("bat", "bats", "chauve-souris", "f", "wings"),
    ("spider", "spiders", "araignée", "f", "legs"),
    ("snail", "snails", "escargot", "m", "stripes"),
    ("weasel", "weasels", "belette", "f", "paws"),
    ("crab", "crabs", "crabe", "m", "claws"),
)
SIZES = (("small", "petit", "petite"), ("large", "grand", "grande"))
COLORS = (
    ("grey", "gris", "grise"),
    ("brown", "brun", "brune"),
    ("green", "vert", "verte"),
    ("red", "rouge", "rouge"),
    ("black", "noir", "noire"),
    ("white", "blanc", "blanche"),
    ("yellow", "jaune", "jaune"),
    ("blue", "bleu", "bleue"),
    ("speckled", "tacheté", "tachetée"),
    ("striped", "rayé", "rayée"),
    ("golden", "doré", "dorée"),
    ("silver", "argenté", "argentée"),
)
# (English, French after "se nourrit", French after "mange surtout")
DIETS = (
    ("insects", "d'insectes", "des insectes"),
    ("seeds", "de graines", "des graines"),
    ("berries", "de baies", "des baies"),
    ("small fish", "de petits poissons", "de petits poissons"),
    ("leaves", "de feuilles", "des feuilles"),
    ("snails", "d'escargots", "des escargots"),
    ("roots", "de racines", "des racines"),
    ("worms", "de vers", "des vers"),
    ("moss", "de mousse", "de la mousse"),
    ("mice", "de souris", "des souris"),
    ("nectar", "de nectar", "du nectar"),
    ("algae", "d'algues", "des algues"),
    ("fruit", "de fruits", "des fruits"),
)
ACTIVITIES = (
    ("at night", "la nuit"),
    ("at dawn", "à l'aube"),
    ("at dusk", "au crépuscule"),
    ("during the day", "pendant la journée"),
)
RIVER_CHARACTERS = (
    ("wide and slow", "large et lente"),
    ("narrow and fast", "étroite et rapide"),
    ("shallow and clear", "peu profonde et claire"),
    ("deep and dark", "profonde et sombre"),
    ("cold and quick", "froide et rapide"),
    ("broad and muddy", "large et boueuse"),
)
TERRAINS = (
    "rolling hills",
    "pine forests",
    "quiet lakes",
    "vineyards",
    "wide marshes",
    "apple orchards",
    "chalk cliffs",
    "high meadows",
    "dark woods",
    "sandy heaths",
    "terraced fields",
    "deep valleys",
)
CONNECTIVES = (
    "Also, ",
    "In addition, ",
    "Moreover, ",
    "Interestingly, ",
    "As it happens, ",
    "By all accounts, ",
    "What is more, ",
)

# --------------------------------------------------------------------------------------
# Names: built from syllables so no name is borrowed from real text.
# --------------------------------------------------------------------------------------

ONSETS = (
    "b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n", "p",
    "r", "s", "st", "t", "tr", "v", "z", "th", "sk", "w", "c", "fl", "bl", "j",
    "b", "d", "k", "l", "m", "n", "r", "s", "t", "v",
)  # fmt: skip
VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "a", "e", "i", "o", "u", "ae", "ei", "ou")
# Codas that can close a syllable before a vowel-initial ending or at the end of a name.
CODAS = ("n", "r", "l", "s", "k", "m", "th", "d", "v", "nd", "rn", "st", "rk", "lt")
_BAD_NAME = re.compile(r"[bcdfghjklmnpqrstvwxz]{4}|[aeiouy]{3}|(.)\1")
# Real places and common words the syllables can stumble on; the world must stay fictional.
# fmt: off
_REAL_NAMES = frozenset((
    "paris", "lima", "rome", "roma", "oslo", "bern", "berlin", "milan", "madrid", "vienna",
    "lisbon", "london", "boston", "dallas", "denver", "austin", "tokyo", "kyoto", "delhi",
    "dubai", "doha", "cairo", "tunis", "rabat", "dakar", "lagos", "accra", "nairobi", "peru",
    "cuba", "mali", "chad", "iran", "iraq", "togo", "oman", "laos", "nepal", "china", "india",
    "japan", "kenya", "sudan", "malta", "nice", "tours", "lyon", "brest", "metz", "nancy",
    "troy", "sparta", "delos", "sara", "maria", "anna", "john", "mark", "paul", "peter", "lena",
    "nina", "tina", "dana", "vera", "rosa", "lola", "mia", "ella", "leo", "max", "sam", "ben",
    "dan", "tom", "tim", "bob", "don", "ron", "river", "mount", "lake", "sea", "town", "city",
    "king", "queen", "rose", "lily", "baker",
))
# fmt: on


class NameMaker:
    """Invents pronounceable names and never hands out the same name twice."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def stem(self, syllables: int, closed: bool) -> str:
        """Open syllables inside, so names flow; a closed last one before a vowel ending."""
        parts = [self.rng.choice(ONSETS) + self.rng.choice(VOWELS) for _ in range(syllables)]
        if closed:
            parts[-1] += self.rng.choice(CODAS)
        elif syllables > 1 and self.rng.random() < 0.3:
            parts[0] += self.rng.choice(CODAS[:8])
        return "".join(parts)

    def unique(self, make: Callable[[], str], min_len: int = 4, max_len: int = 10) -> str:
        while True:
            name = make()
            key = name.lower()
            fits = min_len <= len(name) <= max_len and not _BAD_NAME.search(key)
            if fits and key not in self.used and key not in _REAL_NAMES:
                self.used.add(key)
                return name

    def proper(self, syllables: tuple[int, ...], endings: tuple[str, ...] = ("",)) -> str:
        def make() -> str:
            ending = self.rng.choice(endings)
            closed = not ending or ending[0] in "aeiouy"
            if ending and not closed and self.rng.random() < 0.5:
                closed = True
            return (self.stem(self.rng.choice(syllables), closed) + ending).capitalize()

        return self.unique(make)

    def lower(self, syllables: tuple[int, ...], endings: tuple[str, ...] = ("",)) -> str:
        return self.proper(syllables, endings).lower()


FEMALE_ENDINGS = ("a", "ina", "elle", "ia", "ette", "wen", "ra", "is", "ie", "ora")
MALE_ENDINGS = ("o", "an", "ric", "en", "as", "ulf", "mir", "ek", "or", "im")
SURNAME_ENDINGS = ("", "", "", "son", "ek", "ard", "ley", "is", "ow", "en", "ing")
TOWN_ENDINGS = (
    "", "", "", "holm", "wick", "by", "mere", "stad", "ton", "vale", "burg", "dal", "ford",
    "hurst", "port",
)  # fmt: skip

# --------------------------------------------------------------------------------------
# The world: entities linked to each other by facts.
# --------------------------------------------------------------------------------------


@dataclass
class Entity:
    """One thing the world talks about; `attrs` holds its facts, some pointing at others."""

    kind: str
    name: str
    attrs: dict[str, Any] = field(default_factory=dict)
    split: str = "train"
    fields: dict[str, str] = field(default_factory=dict)
    facts: list[str] | None = None  # fact keys its fields can fill, worked out once

    def __getitem__(self, key: str) -> Any:
        return self.attrs[key]

    def link(self, key: str) -> Entity:
        value = self.attrs[key]
        assert isinstance(value, Entity)
        return value


@dataclass
class World:
    """All entities by kind, plus the regions and seas they refer to."""

    entities: dict[str, list[Entity]]
    regions: list[Entity]
    seas: list[str]

    def all(self) -> Iterable[Entity]:
        for kind in KINDS:
            yield from self.entities[kind]


def pick_person(
    rng: random.Random, people: list[Entity], born: tuple[int, int], busy: set[int]
) -> Entity:
    """A person born in the given range, preferring one without a role, so roles spread out."""
    lo, hi = born
    fits = [p for p in people if lo <= p["birth_year"] <= hi]
    free = [p for p in fits if id(p) not in busy]
    choice = rng.choice(free or fits or people)
    busy.add(id(choice))
    return choice


def make_regions(rng: random.Random, names: NameMaker) -> list[Entity]:
    terrains = list(TERRAINS)
    rng.shuffle(terrains)
    endings = ("", "", "ia", "mark", "land", "moor", "reach", "shire")
    return [
        Entity("region", names.proper((2,), endings), {"terrain": terrains[i % len(terrains)]})
        for i in range(N_REGIONS)
    ]


def make_mountains(rng: random.Random, names: NameMaker, regions: list[Entity]) -> list[Entity]:
    return [
        Entity(
            "mountain",
            names.proper((2,)),
            {
                "region": rng.choice(regions),
                "height": rng.randint(900, 4800),
                "snow_months": rng.randint(2, 9),
            },
        )
        for _ in range(COUNTS["mountain"])
    ]


def make_rivers(
    rng: random.Random, names: NameMaker, mountains: list[Entity], seas: list[str]
) -> list[Entity]:
    endings = ("a", "e", "on", "is", "el", "ir", "")
    return [
        Entity(
            "river",
            names.proper((1, 2), endings),
            {
                "source": rng.choice(mountains),
                "length": rng.randint(40, 900),
                "sea": rng.choice(seas),
                "character": rng.choice(RIVER_CHARACTERS),
            },
        )
        for _ in range(COUNTS["river"])
    ]


def make_towns(
    rng: random.Random, names: NameMaker, regions: list[Entity], rivers: list[Entity]
) -> list[Entity]:
    towns = []
    for i in range(COUNTS["town"]):
        # The first towns go round the rivers twice, so every river flows past two towns.
        river = rivers[i % len(rivers)] if i < 2 * len(rivers) else rng.choice(rivers)
        founded = rng.randint(900, 1880)
        landmark = rng.choice(LANDMARKS)
        towns.append(
            Entity(
                "town",
                names.proper((1, 2), TOWN_ENDINGS),
                {
                    "region": rng.choice(regions),
                    "river": river,
                    "population": rng.choice((rng.randint(800, 9000), rng.randint(9000, 250000))),
                    "founded": founded,
                    "landmark": (names.proper((2,)), landmark),
                    "landmark_year": rng.randint(founded + 20, 1960),
                },
            )
        )
    return towns


def make_people(rng: random.Random, names: NameMaker, towns: list[Entity]) -> list[Entity]:
    firsts = {
        "f": [names.proper((1, 2), FEMALE_ENDINGS) for _ in range(260)],
        "m": [names.proper((1, 2), MALE_ENDINGS) for _ in range(260)],
    }
    surnames = [names.proper((1, 2), SURNAME_ENDINGS) for _ in range(1400)]
    people, used = [], set()
    while len(people) < COUNTS["person"]:
        gender = rng.choice("fm")
        first, last = rng.choice(firsts[gender]), rng.choice(surnames)
        if (first, last) in used:
            continue
        used.add((first, last))
        born = rng.randint(1925, 2004)
        birth_town, home = rng.sample(towns, 2)
        people.append(
            Entity(
                "person",
                f"{first} {last}",
                {
                    "first": first,
                    "gender": gender,
                    "birth_town": birth_town,
                    "birth_year": born,
                    "home": home,
                    "move_year": min(born + rng.randint(18, 45), 2023),
                    "profession": rng.choice(PROFESSIONS),
                    "hobbies": tuple(rng.sample(HOBBIES, 2)),
                },
            )
        )
    return people


def make_companies(
    rng: random.Random, names: NameMaker, people: list[Entity], towns: list[Entity], busy: set[int]
) -> list[Entity]:
    companies = []
    for _ in range(COUNTS["company"]):
        founded = rng.randint(1945, 2020)
        founder = pick_person(rng, people, (founded - 60, founded - 22), busy)
        name = names.unique(
            lambda: (
                f"{names.stem(rng.choice((1, 2)), True).capitalize()} "
                f"{rng.choice(COMPANY_SUFFIXES)}"
            )
        )
        company = Entity(
            "company",
            name,
            {
                "founder": founder,
                "founded": founded,
                "product": rng.choice(PRODUCTS),
                "hq": rng.choice(towns),
                "employees": rng.choice((rng.randint(8, 200), rng.randint(200, 9000))),
            },
        )
        founder.attrs["founded_company"] = company
        founder.attrs.setdefault("employer", company)
        companies.append(company)
    for person in people:
        if "employer" not in person.attrs:
            fits = [c for c in companies if c["founded"] <= person["birth_year"] + 45]
            person.attrs["employer"] = rng.choice(fits or companies)
    return companies


def make_schools(
    rng: random.Random, names: NameMaker, people: list[Entity], towns: list[Entity], busy: set[int]
) -> list[Entity]:
    schools = []
    for _ in range(COUNTS["school"]):
        kind = rng.choice(SCHOOL_TYPES)
        base = names.proper((2,))
        head = pick_person(rng, people, (1945, 1990), busy)
        school = Entity(
            "school",
            f"{base} {kind[0]}",
            {
                "base": base,
                "type": kind,
                "town": rng.choice(towns),
                "founded": rng.randint(1600, 1990),
                "subject": rng.choice(SUBJECTS),
                "head": head,
                "head_since": rng.randint(max(head["birth_year"] + 30, 1990), 2023),
                "students": rng.randint(80, 3000),
            },
        )
        head.attrs["heads_school"] = school
        head.attrs["profession"] = PROFESSIONS[2]  # a principal is a teacher
        schools.append(school)
    for person in people:
        person.attrs["school"] = rng.choice(schools)
    return schools


def make_dishes(
    rng: random.Random, names: NameMaker, people: list[Entity], towns: list[Entity]
) -> list[Entity]:
    dishes = []
    for _ in range(COUNTS["dish"]):
        town = rng.choice(towns)
        dishes.append(
            Entity(
                "dish",
                names.lower((2,), ("", "", "oc", "elli", "ash", "ka", "et", "ine", "ou")),
                {
                    "type": rng.choice(DISH_TYPES),
                    "town": town,
                    "ingredient": rng.choice(INGREDIENTS),
                    "occasion": rng.choice(OCCASIONS),
                    "taste": rng.choice(TASTES),
                    "temp": rng.choice(TEMPS),
                    "first_year": rng.randint(town["founded"], 1990),
                },
            )
        )
    for person in people:
        dish = rng.choice(dishes)
        person.attrs["dish"] = dish
        dish.attrs.setdefault("fan", person)
    return dishes


def make_animals(
    rng: random.Random,
    names: NameMaker,
    world: dict[str, list[Entity]],
    regions: list[Entity],
    busy: set[int],
) -> list[Entity]:
    animals = []
    for _ in range(COUNTS["animal"]):
        year = rng.randint(1950, 2020)
        discoverer = pick_person(rng, world["person"], (year - 70, year - 22), busy)
        habitat = rng.choice(("mountain", "river", "forest", "marsh", "meadow"))
        place = rng.choice(
            {
                "mountain": world["mountain"],
                "river": world["river"],
                "forest": regions,
                "marsh": world["town"],
                "meadow": world["town"],
            }[habitat]
        )
        klass = rng.choice(ANIMAL_CLASSES)
        size = rng.choice(SIZES)
        animal = Entity(
            "animal",
            names.lower((1, 2)),
            {
                "class": klass,
                "size": size,
                "color": rng.choice(COLORS),
                "habitat": (habitat, place),
                "diet": rng.choice(DIETS),
                "lifespan": rng.randint(2, 40),
                "length": rng.randint(2, 30) if size[0] == "small" else rng.randint(30, 150),
                "activity": rng.choice(ACTIVITIES),
                "discoverer": discoverer,
                "discovered": year,
            },
        )
        discoverer.attrs["described"] = animal
        animals.append(animal)
    return animals


def assign_roles(rng: random.Random, world: dict[str, list[Entity]], busy: set[int]) -> None:
    """Mayors and first climbers are existing people, so their own documents mention the role."""
    for town in world["town"]:
        natives = [p for p in world["person"] if p["birth_town"] is town]
        mayor = pick_person(rng, natives or world["person"], (1935, 1985), busy)
        since = rng.randint(1995, 2022)
        town.attrs.update(mayor=mayor, mayor_since=since)
        mayor.attrs.setdefault("mayor_of", town)
    for mountain in world["mountain"]:
        year = rng.randint(1950, 2015)
        climber = pick_person(rng, world["person"], (year - 60, year - 18), busy)
        mountain.attrs.update(climber=climber, climb_year=year)
        climber.attrs.setdefault("climbed", mountain)


def build_world(rng: random.Random) -> World:
    names = NameMaker(rng)
    regions = make_regions(rng, names)
    seas = [names.proper((1, 2)) for _ in range(N_SEAS)]
    busy: set[int] = set()
    mountains = make_mountains(rng, names, regions)
    rivers = make_rivers(rng, names, mountains, seas)
    towns = make_towns(rng, names, regions, rivers)
    people = make_people(rng, names, towns)
    entities = {"person": people, "town": towns, "river": rivers, "mountain": mountains}
    entities["company"] = make_companies(rng, names, people, towns, busy)
    entities["school"] = make_schools(rng, names, people, towns, busy)
    entities["dish"] = make_dishes(rng, names, people, towns)
    entities["animal"] = make_animals(rng, names, entities, regions, busy)
    assign_roles(rng, entities, busy)
    world = World(entities, regions, seas)
    assign_splits(rng, world)
    for entity in [*world.all(), *regions]:
        entity.fields = FIELD_MAKERS[entity.kind](entity, world, rng)
    return world


def assign_splits(rng: random.Random, world: World) -> None:
    """Split by entity within each kind, so every kind appears in every split."""
    for kind in KINDS:
        order = list(world.entities[kind])
        rng.shuffle(order)
        n_eval = max(1, round(len(order) * 0.1))
        for i, entity in enumerate(order):
            entity.split = "validation" if i < n_eval else "test" if i < 2 * n_eval else "train"


# --------------------------------------------------------------------------------------
# Fields: every fact value rendered once, in English and French, ready for the templates.
# --------------------------------------------------------------------------------------

_FR_VOWELS = "aeiouéèêâîôœ"


def a_an(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def possessive(name: str) -> str:
    return name + ("'" if name.endswith("s") else "'s")


def fr_the(noun: str, gender: str) -> str:
    """French definite article, elided before a vowel."""
    if noun[0].lower() in _FR_VOWELS:
        return "l'" + noun
    return ("le " if gender == "m" else "la ") + noun


def fr_de(phrase: str) -> str:
    """'de' + phrase with the contractions French requires (du, des)."""
    if phrase.startswith("le "):
        return "du " + phrase[3:]
    if phrase.startswith("les "):
        return "des " + phrase[4:]
    return ("d'" if phrase[0].lower() in _FR_VOWELS else "de ") + phrase


def fr_a(phrase: str) -> str:
    """'à' + phrase with the contractions French requires (au, aux)."""
    if phrase.startswith("le "):
        return "au " + phrase[3:]
    if phrase.startswith("les "):
        return "aux " + phrase[4:]
    return "à " + phrase


def fem(entity: Entity) -> bool:
    return entity.attrs.get("gender") == "f"


def person_fields(p: Entity, world: World, rng: random.Random) -> dict[str, str]:
    birth_town, employer, school = p.link("birth_town"), p.link("employer"), p.link("school")
    dish = p.link("dish")
    prof = p["profession"]
    (h1, fh1), (h2, fh2) = p["hobbies"]
    f: dict[str, str] = {
        "title": p.name,
        "n": p.name,
        "fn": p.name,
        "kind_ref": str(p["first"]),
        "gender": str(p["gender"]),
        "fr_pron": "elle" if fem(p) else "il",
        "e": "e" if fem(p) else "",
        "name": p.name,
        "birth_town": birth_town.name,
        "birth_year": str(p["birth_year"]),
        "birth_region": birth_town.link("region").name,
        "birth_river": birth_town.link("river").name,
        "home": p.link("home").name,
        "move_year": str(p["move_year"]),
        "prof": prof[0],
        "a_prof": a_an(prof[0]),
        "f_prof": prof[2] if fem(p) else prof[1],
        "company": employer.name,
        "product": employer["product"][0],
        "f_product": employer["product"][1],
        "hq": employer.link("hq").name,
        "hobby1": h1,
        "hobby2": h2,
        "f_hobby1": fh1,
        "f_hobby2": fh2,
        "school": school.name,
        "school_town": school.link("town").name,
        "f_a_school": fr_a(school_fr(school)),
        "f_de_school": fr_de(school_fr(school)),
        "dish": dish.name,
        "a_dish_type": a_an(dish["type"][0]),
        "dish_town": dish.link("town").name,
        "f_dish": dish_fr(dish),
    }
    if "founded_company" in p.attrs:
        company = p.link("founded_company")
        f["founded_company"] = company.name
        f["founded_year"] = str(company["founded"])
        f["f_le_fondateur"] = "la fondatrice" if fem(p) else "le fondateur"
    if "mayor_of" in p.attrs:
        town = p.link("mayor_of")
        f["mayor_of"] = town.name
        f["mayor_since"] = str(town["mayor_since"])
        f["f_le_maire"] = "la maire" if fem(p) else "le maire"
    if "climbed" in p.attrs:
        mountain = p.link("climbed")
        f["climbed"] = "Mount " + mountain.name
        f["f_climbed"] = "le mont " + mountain.name
        f["f_de_climbed"] = "du mont " + mountain.name
        f["climb_year"] = str(mountain["climb_year"])
    if "described" in p.attrs:
        animal = p.link("described")
        f["described"] = animal.name
        f["f_described"] = fr_the(animal.name, animal["class"][3])
        f["described_year"] = str(animal["discovered"])
        f["a_described_desc"] = animal_desc_en(animal)
    if "heads_school" in p.attrs:
        school = p.link("heads_school")
        f["heads_school"] = school.name
        f["heads_school_town"] = school.link("town").name
        f["f_de_heads_school"] = fr_de(school_fr(school))
        f["f_le_directeur"] = "la directrice" if fem(p) else "le directeur"
        f["head_since"] = str(school["head_since"])
    return f


def school_fr(school: Entity) -> str:
    _, noun, gender = school["type"]
    return fr_the(f"{noun} {school['base']}", gender)


def dish_fr(dish: Entity) -> str:
    return fr_the(dish.name, dish["type"][2])


def animal_desc_en(animal: Entity) -> str:
    return f"a {animal['size'][0]} {animal['color'][0]} {animal['class'][0]}"


def animal_desc_fr(animal: Entity) -> str:
    _, _, noun, gender, _ = animal["class"]
    i = 2 if gender == "f" else 1
    article = "une" if gender == "f" else "un"
    return f"{article} {animal['size'][i]} {noun} {animal['color'][i]}"


def population_phrase(population: int) -> str:
    if population < 5000:
        return "a small town"
    return "a busy town" if population < 60000 else "one of the larger towns in the land"


def town_fields(t: Entity, world: World, rng: random.Random) -> dict[str, str]:
    region, river, mayor = t.link("region"), t.link("river"), t.link("mayor")
    base, (kind_en, kind_fr, gender) = t["landmark"]
    f = {
        "title": t.name,
        "n": t.name,
        "fn": t.name,
        "kind_ref": "the town",
        "gender": "n",
        "fr_pron": "elle",
        "e": "e",
        "name": t.name,
        "region": region.name,
        "terrain": str(region["terrain"]),
        "river": river.name,
        "river_character": river["character"][0],
        "population": str(t["population"]),
        "size_phrase": population_phrase(t["population"]),
        "founded": str(t["founded"]),
        "landmark": f"{base} {kind_en}",
        "the_landmark": f"the {base} {kind_en}",
        "f_landmark": fr_the(f"{kind_fr} {base}", gender),
        "landmark_e": "e" if gender == "f" else "",
        "landmark_year": str(t["landmark_year"]),
        "mayor": mayor.name,
        "mayor_since": str(t["mayor_since"]),
        "f_le_maire": "la maire" if fem(mayor) else "le maire",
    }
    natives = [p for p in world.entities["person"] if p["birth_town"] is t and p is not mayor]
    if natives:
        native = rng.choice(natives)
        f.update(native=native.name, a_native_prof=a_an(native["profession"][0]))
    companies = [c for c in world.entities["company"] if c["hq"] is t]
    if companies:
        company = rng.choice(companies)
        f.update(company_here=company.name, product_here=company["product"][0])
    schools = [s for s in world.entities["school"] if s["town"] is t]
    if schools:
        school = rng.choice(schools)
        f.update(school_here=school.name, f_school_here=school_fr(school))
    dishes = [d for d in world.entities["dish"] if d["town"] is t]
    if dishes:
        dish = rng.choice(dishes)
        f.update(
            dish_here=dish.name,
            a_dish_here_type=a_an(dish["type"][0]),
            dish_here_ing=dish["ingredient"][0],
            f_dish_here=dish_fr(dish),
        )
    return f


def river_fields(r: Entity, world: World, rng: random.Random) -> dict[str, str]:
    source = r.link("source")
    towns = [t for t in world.entities["town"] if t["river"] is r]
    town1, town2 = rng.sample(towns, 2)
    length = r["length"]
    return {
        "title": f"{r.name} River",
        "n": f"the {r.name} River",
        "fn": f"la rivière {r.name}",
        "kind_ref": "the river",
        "gender": "n",
        "fr_pron": "elle",
        "e": "e",
        "name": r.name,
        "source": "Mount " + source.name,
        "f_source": "le mont " + source.name,
        "source_region": source.link("region").name,
        "length": str(length),
        "river_size": "a short river" if length < 150 else "a long river",
        "sea": f"the Sea of {r['sea']}",
        "sea_name": f"Sea of {r['sea']}",
        "f_sea": f"la mer de {r['sea']}",
        "character": r["character"][0],
        "f_character": r["character"][1],
        "town1": town1.name,
        "town2": town2.name,
    }


def mountain_fields(m: Entity, world: World, rng: random.Random) -> dict[str, str]:
    region, climber = m.link("region"), m.link("climber")
    height = m["height"]
    if height < 2000:
        height_phrase = "a modest peak"
    elif height < 3800:
        height_phrase = "a tall peak"
    else:
        height_phrase = f"one of the highest peaks in {region.name}"
    f = {
        "title": "Mount " + m.name,
        "n": "Mount " + m.name,
        "fn": "le mont " + m.name,
        "kind_ref": "the mountain",
        "gender": "n",
        "fr_pron": "il",
        "e": "",
        "name": m.name,
        "f_de_n": "du mont " + m.name,
        "region": region.name,
        "terrain": str(region["terrain"]),
        "height": str(height),
        "height_phrase": height_phrase,
        "snow_months": str(m["snow_months"]),
        "climber": climber.name,
        "climb_year": str(m["climb_year"]),
        "a_climber_prof": a_an(climber["profession"][0]),
    }
    near = [t for t in world.entities["town"] if t["region"] is region]
    if near:
        f["near_town"] = rng.choice(near).name
    rivers = [r for r in world.entities["river"] if r["source"] is m]
    if rivers:
        f["river_from"] = rng.choice(rivers).name
    animals = [a for a in world.entities["animal"] if a["habitat"][1] is m]
    if animals:
        animal = rng.choice(animals)
        f.update(animal_here=animal.name, a_animal_here_desc=animal_desc_en(animal))
        f["f_animal_here"] = fr_the(animal.name, animal["class"][3])
    return f


def company_fields(c: Entity, world: World, rng: random.Random) -> dict[str, str]:
    hq = c.link("hq")
    f = {
        "title": c.name,
        "n": c.name,
        "fn": c.name,
        "kind_ref": rng.choice(("the company", "the firm")),
        "gender": "n",
        "fr_pron": "elle",
        "e": "e",
        "name": c.name,
        "founder": c.link("founder").name,
        "founded": str(c["founded"]),
        "product": c["product"][0],
        "f_product": c["product"][1],
        "hq": hq.name,
        "hq_region": hq.link("region").name,
        "employees": str(c["employees"]),
    }
    staff = [p for p in world.entities["person"] if p["employer"] is c and p is not c["founder"]]
    if staff:
        employee = rng.choice(staff)
        f.update(employee=employee.name, employee_a_prof=a_an(employee["profession"][0]))
    return f


def school_fields(s: Entity, world: World, rng: random.Random) -> dict[str, str]:
    town, head = s.link("town"), s.link("head")
    fr_name = school_fr(s)
    subject_en, subject_fr = s["subject"]
    f = {
        "title": s.name,
        "n": s.name,
        "fn": fr_name,
        "kind_ref": "the school",
        "gender": "n",
        "fr_pron": "elle" if s["type"][2] == "f" else "il",
        "e": "e" if s["type"][2] == "f" else "",
        "name": s.name,
        "f_a_n": fr_a(fr_name),
        "f_de_n": fr_de(fr_name),
        "town": town.name,
        "town_region": town.link("region").name,
        "founded": str(s["founded"]),
        "subject": subject_en,
        "f_subject": subject_fr,
        "f_de_subject": fr_de(subject_fr),
        "head": head.name,
        "head_since": str(s["head_since"]),
        "f_le_directeur": "la directrice" if fem(head) else "le directeur",
        "students": str(s["students"]),
    }
    alumni = [p for p in world.entities["person"] if p["school"] is s]
    if alumni:
        f["alum"] = rng.choice(alumni).name
    return f


def dish_fields(d: Entity, world: World, rng: random.Random) -> dict[str, str]:
    type_en, type_fr, gender = d["type"]
    ing_en, ing_fr, ing_fr_def = d["ingredient"]
    fr_name = dish_fr(d)
    f = {
        "title": d.name,
        "n": d.name,
        "fn": fr_name,
        "kind_ref": "the dish",
        "gender": "n",
        "fr_pron": "elle" if gender == "f" else "il",
        "e": "e" if gender == "f" else "",
        "name": d.name,
        "f_de_n": fr_de(fr_name),
        "dish_type": type_en,
        "a_dish_type": a_an(type_en),
        "f_un_type": ("une " if gender == "f" else "un ") + type_fr,
        "town": d.link("town").name,
        "town_region": d.link("town").link("region").name,
        "first_year": str(d["first_year"]),
        "ingredient": ing_en,
        "f_de_ingredient": fr_de(ing_fr),
        "f_le_ingredient": ing_fr_def,
        "occasion": d["occasion"][0],
        "f_occasion": d["occasion"][1],
        "taste": d["taste"][0],
        "f_taste": d["taste"][1],
        "temp": d["temp"][0],
        "f_temp": d["temp"][1],
    }
    if "fan" in d.attrs:
        fan = d.link("fan")
        f.update(fan=fan.name, a_fan_prof=a_an(fan["profession"][0]))
        f["fan_town"] = fan.link("home").name
    return f


def habitat_phrases(kind: str, place: Entity) -> tuple[str, str, str]:
    """(English phrase, French phrase, the place name a QA answer points at)."""
    if kind == "mountain":
        return (
            f"on the slopes of Mount {place.name}",
            f"sur les pentes du mont {place.name}",
            f"Mount {place.name}",
        )
    if kind == "river":
        return (
            f"along the {place.name} River",
            f"le long de la rivière {place.name}",
            place.name,
        )
    if kind == "forest":
        return f"in the forests of {place.name}", f"dans les forêts de {place.name}", place.name
    if kind == "marsh":
        return (
            f"in the marshes near {place.name}",
            f"dans les marais près de {place.name}",
            place.name,
        )
    return (
        f"in the meadows around {place.name}",
        f"dans les prairies autour de {place.name}",
        place.name,
    )


def animal_fields(a: Entity, world: World, rng: random.Random) -> dict[str, str]:
    klass_en, plural, _, gender, covering = a["class"]
    habitat_en, habitat_fr, place = habitat_phrases(*a["habitat"])
    diet_en, diet_de, diet_des = a["diet"]
    activity_en, activity_fr = a["activity"]
    return {
        "title": a.name,
        "n": "the " + a.name,
        "fn": fr_the(a.name, gender),
        "kind_ref": "this animal",
        "gender": "n",
        "fr_pron": "elle" if gender == "f" else "il",
        "e": "e" if gender == "f" else "",
        "name": a.name,
        "animal_class": klass_en,
        "animal_plural": plural,
        "a_desc": animal_desc_en(a),
        "f_desc": animal_desc_fr(a),
        "covering": covering,
        "habitat": habitat_en,
        "f_habitat": habitat_fr,
        "habitat_place": place,
        "diet": diet_en,
        "f_de_diet": diet_de,
        "f_des_diet": diet_des,
        "lifespan": str(a["lifespan"]),
        "length_cm": str(a["length"]),
        "activity": activity_en,
        "f_activity": activity_fr,
        "f_active": "active" if gender == "f" else "actif",
        "discoverer": a.link("discoverer").name,
        "discovered_year": str(a["discovered"]),
    }


def region_fields(r: Entity, world: World, rng: random.Random) -> dict[str, str]:
    towns = sorted(
        (t for t in world.entities["town"] if t["region"] is r),
        key=lambda t: (-t["population"], t.name),
    )
    mountains = [m for m in world.entities["mountain"] if m["region"] is r]
    f = {
        "title": r.name,
        "n": r.name,
        "fn": r.name,
        "kind_ref": "the region",
        "gender": "n",
        "fr_pron": "elle",
        "e": "e",
        "name": r.name,
        "terrain": str(r["terrain"]),
    }
    if towns:
        f.update(largest=towns[0].name, largest_pop=str(towns[0]["population"]))
    if len(towns) >= 4:
        t1, t2, t3 = rng.sample(towns[1:], 3)
        f.update(town1=t1.name, town2=t2.name, town3=t3.name)
    if mountains:
        f["mountain"] = "Mount " + rng.choice(mountains).name
    return f


FIELD_MAKERS: dict[str, Callable[[Entity, World, random.Random], dict[str, str]]] = {
    "person": person_fields,
    "town": town_fields,
    "river": river_fields,
    "mountain": mountain_fields,
    "company": company_fields,
    "school": school_fields,
    "dish": dish_fields,
    "animal": animal_fields,
    "region": region_fields,
}


# --------------------------------------------------------------------------------------
# Templates. Reference fields: {s} subject, {p} possessive, {o} object (a name, a short
# name or a pronoun), {pr}/{pp}/{po} always the pronoun, {n} always the name; {fs} and {fn}
# are the French subject and name. Sentences are capitalised after rendering.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    """One kind of fact: English paraphrases for prose, aligned English-French pairs for
    translation, and the questions it answers keyed by the field that holds the answer."""

    en: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...] = ()
    questions: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def english(self) -> tuple[str, ...]:
        return self.en + tuple(en for en, _ in self.pairs)


def fact(
    en: list[str], pairs: list[tuple[str, str]] | None = None, q: dict[str, list[str]] | None = None
) -> Fact:
    questions = tuple((k, tuple(v)) for k, v in (q or {}).items())
    return Fact(tuple(en), tuple(pairs or ()), questions)


PERSON_FACTS = {
    "born_both": fact(
        [
            "In {birth_year}, {s} was born in the town of {birth_town}.",
            "{s} was born in {birth_year} in {birth_town}, a town in {birth_region}.",
            "Born in {birth_town} in {birth_year}, {s} spent {pp} childhood near the "
            "{birth_river} River.",
            "{s} came into the world in {birth_town} in the year {birth_year}.",
            "{s} was born in {birth_town} in {birth_year} and grew up there.",
        ],
        [
            (
                "{s} was born in {birth_town} in {birth_year}.",
                "{fs} est né{e} à {birth_town} en {birth_year}.",
            ),
            (
                "In {birth_year}, {s} was born in {birth_town}.",
                "En {birth_year}, {fs} est né{e} à {birth_town}.",
            ),
        ],
    ),
    "born_town": fact(
        [
            "{s} comes from {birth_town}, a town in {birth_region}.",
            "{s} grew up in {birth_town}, where {pr} was born.",
            "{birth_town} is {p} hometown.",
            "{p} birthplace is the town of {birth_town}, on the {birth_river} River.",
            "{s} was born and raised in {birth_town}.",
        ],
        [
            ("{s} was born in {birth_town}.", "{fs} est né{e} à {birth_town}."),
            ("{s} comes from {birth_town}.", "{fs} vient de {birth_town}."),
            ("{birth_town} is the hometown of {n}.", "{birth_town} est la ville natale de {fn}."),
        ],
        {
            "birth_town": [
                "Where was {n} born?",
                "In which town was {n} born?",
                "What is the hometown of {n}?",
                "Which town does {n} come from?",
                "Where is {n} from?",
                "What is the birthplace of {n}?",
            ]
        },
    ),
    "born_year": fact(
        [
            "{s} was born in the year {birth_year}.",
            "{p} year of birth is {birth_year}.",
            "The records of {birth_town} show that {s} was born in {birth_year}.",
            "{s} was born in {birth_year}, when {birth_town} was still a quiet place.",
        ],
        [
            ("{s} was born in {birth_year}.", "{fs} est né{e} en {birth_year}."),
            (
                "The year of birth of {n} is {birth_year}.",
                "L'année de naissance de {fn} est {birth_year}.",
            ),
        ],
        {
            "birth_year": [
                "When was {n} born?",
                "In what year was {n} born?",
                "What year was {n} born in?",
                "In which year was {n} born?",
                "What is the year of birth of {n}?",
            ]
        },
    ),
    "profession": fact(
        [
            "{s} is {a_prof} by trade.",
            "{s} earns a living as {a_prof}.",
            "{s} trained as {a_prof} and has worked in that trade ever since.",
            "{s} has been {a_prof} for most of {pp} life.",
            "Like many people in {home}, {s} works as {a_prof}.",
        ],
        [
            ("{s} works as {a_prof}.", "{fs} travaille comme {f_prof}."),
            ("{s} is {a_prof}.", "{fs} est {f_prof}."),
            ("By profession, {s} is {a_prof}.", "De métier, {fs} est {f_prof}."),
        ],
        {
            "prof": [
                "What is the profession of {n}?",
                "What does {n} do for a living?",
                "What is the job of {n}?",
                "What does {n} work as?",
                "What trade does {n} practise?",
            ]
        },
    ),
    "employer": fact(
        [
            "{s} is employed by {company}, which makes {product}.",
            "{s} has a job at {company}, a firm based in {hq}.",
            "For many years, {s} has worked for {company}.",
            "{company} employs {o} at its offices in {hq}.",
            "{s} works for {company}, a company known for its {product}.",
        ],
        [
            ("{s} works at {company}.", "{fs} travaille chez {company}."),
            ("{s} is employed by {company}.", "{fs} est employé{e} par {company}."),
            (
                "{s} works for {company}, which makes {product}.",
                "{fs} travaille pour {company}, qui fabrique {f_product}.",
            ),
        ],
        {
            "company": [
                "Where does {n} work?",
                "Which company employs {n}?",
                "Who is the employer of {n}?",
                "For which company does {n} work?",
                "At which firm does {n} have a job?",
            ]
        },
    ),
    "prof_employer": fact(
        [
            "{s} is {a_prof} at {company} in {hq}.",
            "At {company}, {s} works as {a_prof}.",
            "{s} works as {a_prof} for {company}, a firm that makes {product}.",
            "These days {s} is {a_prof} at {company}, where {pr} is well liked.",
        ],
        [
            (
                "{s} works as {a_prof} at {company}.",
                "{fs} travaille comme {f_prof} chez {company}.",
            ),
            ("{s} is {a_prof} at {company}.", "{fs} est {f_prof} chez {company}."),
        ],
    ),
    "hobby": fact(
        [
            "In {pp} free time, {s} enjoys {hobby1}.",
            "{p} favourite pastime is {hobby1}.",
            "When {s} is not at work, {pr} is usually {hobby1}.",
            "Outside of work, {s} spends {pp} weekends {hobby1}.",
            "{s} has always loved {hobby1}, and on Sundays {pr} also enjoys {hobby2}.",
            "{s} is fond of {hobby1}, although {pr} finds less time for it than {pr} would like.",
        ],
        [
            ("{s} enjoys {hobby1}.", "{fs} aime {f_hobby1}."),
            ("{s} likes {hobby1} and {hobby2}.", "{fs} aime {f_hobby1} et {f_hobby2}."),
            (
                "In {pp} free time, {s} enjoys {hobby1}.",
                "Pendant son temps libre, {fs} aime {f_hobby1}.",
            ),
        ],
        {
            "hobby1": [
                "What is the favourite pastime of {n}?",
                "What hobby does {n} enjoy?",
                "What does {n} like to do outside of work?",
                "What does {n} enjoy doing?",
            ]
        },
    ),
    "school": fact(
        [
            "As a young student, {s} attended {school}.",
            "{s} is a former student of {school}.",
            "{s} graduated from {school}, a school in {school_town}.",
            "Before starting work, {s} studied at {school}.",
            "{s} went to {school} in {school_town} and still visits it now and then.",
        ],
        [
            ("{s} studied at {school}.", "{fs} a étudié {f_a_school}."),
            ("{s} graduated from {school}.", "{fs} est diplômé{e} {f_de_school}."),
            (
                "{s} studied at {school} in {school_town}.",
                "{fs} a étudié {f_a_school} à {school_town}.",
            ),
        ],
        {
            "school": [
                "Where did {n} study?",
                "Which school did {n} attend?",
                "What school did {n} graduate from?",
                "At which school did {n} study?",
            ]
        },
    ),
    "home": fact(
        [
            "{s} now lives in {home}.",
            "These days, {s} lives in {home}.",
            "In {move_year}, {s} moved to {home}, where {pr} still lives.",
            "{s} left {birth_town} for {home} in {move_year}.",
        ],
        [
            ("{s} lives in {home}.", "{fs} habite à {home}."),
            (
                "{s} moved to {home} in {move_year}.",
                "{fs} s'est installé{e} à {home} en {move_year}.",
            ),
            ("{s} has lived in {home} since {move_year}.", "{fs} vit à {home} depuis {move_year}."),
        ],
        {
            "home": [
                "Where does {n} live?",
                "In which town does {n} live now?",
                "Which town did {n} move to?",
                "Where does {n} live today?",
            ]
        },
    ),
    "dish": fact(
        [
            "{p} favourite dish is {dish}, {a_dish_type} from {dish_town}.",
            "{s} often cooks {dish} for friends.",
            "Of all dishes, {s} likes {dish} best.",
            "{s} never misses a chance to eat {dish}.",
        ],
        [
            ("{s} loves {dish}.", "{fs} adore {f_dish}."),
            ("The favourite dish of {n} is {dish}.", "Le plat préféré de {fn} est {f_dish}."),
        ],
        {
            "dish": [
                "What is the favourite dish of {n}?",
                "Which dish does {n} like best?",
                "What dish does {n} love?",
            ]
        },
    ),
    "founder": fact(
        [
            "In {founded_year}, {s} started {pp} own firm, {founded_company}.",
            "{s} is the founder of {founded_company}.",
            "{founded_company} was set up by {o} in {founded_year}.",
            "{s} founded {founded_company} in {founded_year} and ran it for many years.",
        ],
        [
            (
                "{s} founded {founded_company} in {founded_year}.",
                "{fs} a fondé {founded_company} en {founded_year}.",
            ),
            (
                "{s} is the founder of {founded_company}.",
                "{fs} est {f_le_fondateur} de {founded_company}.",
            ),
        ],
        {
            "founded_company": [
                "Which company did {n} found?",
                "What company was founded by {n}?",
                "What is the name of the firm that {n} started?",
            ]
        },
    ),
    "mayor": fact(
        [
            "{s} is the mayor of {mayor_of}.",
            "Since {mayor_since}, {s} has served as mayor of {mayor_of}.",
            "The people of {mayor_of} chose {o} as their mayor in {mayor_since}.",
            "{s} has led the town of {mayor_of} as its mayor since {mayor_since}.",
        ],
        [
            ("{s} is the mayor of {mayor_of}.", "{fs} est {f_le_maire} de {mayor_of}."),
            (
                "{s} was elected mayor of {mayor_of} in {mayor_since}.",
                "{fs} a été élu{e} maire de {mayor_of} en {mayor_since}.",
            ),
        ],
        {
            "mayor_of": [
                "Of which town is {n} the mayor?",
                "Which town does {n} lead as mayor?",
                "Where is {n} the mayor?",
            ]
        },
    ),
    "climber": fact(
        [
            "{s} was the first person to climb {climbed}, in {climb_year}.",
            "In {climb_year}, {s} became the first to reach the top of {climbed}.",
            "{s} is remembered for the first ascent of {climbed} in {climb_year}.",
        ],
        [
            (
                "{s} was the first person to climb {climbed}.",
                "{fs} a été la première personne à gravir {f_climbed}.",
            ),
            (
                "{s} made the first ascent of {climbed} in {climb_year}.",
                "{fs} a réussi la première ascension {f_de_climbed} en {climb_year}.",
            ),
        ],
        {
            "climbed": [
                "Which mountain did {n} climb first?",
                "Which mountain was first climbed by {n}?",
            ]
        },
    ),
    "describer": fact(
        [
            "In {described_year}, {s} was the first to describe the {described}, "
            "{a_described_desc}.",
            "The {described} was first described by {o} in {described_year}.",
            "{s} is known for describing the {described} in {described_year}.",
            "The {described} was unknown to science until {o} described it in {described_year}.",
        ],
        [
            (
                "{s} first described the {described} in {described_year}.",
                "{fs} a décrit {f_described} pour la première fois en {described_year}.",
            ),
        ],
        {
            "described": [
                "Which animal did {n} first describe?",
                "What animal was first described by {n}?",
            ]
        },
    ),
    "principal": fact(
        [
            "{s} runs {heads_school} in {heads_school_town}.",
            "Since {head_since}, {s} has been in charge of {heads_school}.",
            "{s} became the principal of {heads_school} in {head_since}.",
            "Pupils at {heads_school} know {o} as their principal.",
        ],
        [
            (
                "{s} is the principal of {heads_school}.",
                "{fs} est {f_le_directeur} {f_de_heads_school}.",
            ),
        ],
        {
            "heads_school": [
                "Which school is run by {n}?",
                "Of which school is {n} the principal?",
                "Which school does {n} lead?",
            ]
        },
    ),
}

TOWN_FACTS = {
    "region": fact(
        [
            "{s} lies in the region of {region}.",
            "{s} is located in {region}, a region known for its {terrain}.",
            "{s} is one of the towns of {region}.",
            "In the region of {region}, surrounded by {terrain}, lies the town of {n}.",
        ],
        [
            ("{s} is a town in {region}.", "{fs} est une ville de la région de {region}."),
            ("{s} lies in the region of {region}.", "{fs} se trouve dans la région de {region}."),
        ],
        {
            "region": [
                "In which region is {n}?",
                "Which region is {n} located in?",
                "In what region does the town of {n} lie?",
                "Where is the town of {n}?",
            ]
        },
    ),
    "river": fact(
        [
            "The {river} River flows through {o}.",
            "{s} sits beside the {river} River, which is {river_character} at that point.",
            "Several bridges cross the {river} River in {n}.",
            "{s} grew up along the banks of the {river} River.",
        ],
        [
            ("{s} lies on the {river} River.", "{fs} se trouve au bord de la rivière {river}."),
            ("The {river} River flows through {n}.", "La rivière {river} traverse {fn}."),
            (
                "{s} was built on the banks of the {river} River.",
                "{fs} a été construite sur les rives de la rivière {river}.",
            ),
        ],
        {
            "river": [
                "On which river does {n} lie?",
                "Which river flows through {n}?",
                "What river runs through the town of {n}?",
                "Which river is {n} built on?",
            ]
        },
    ),
    "population": fact(
        [
            "{p} population is roughly {population}.",
            "With {population} inhabitants, {s} is {size_phrase}.",
            "Around {population} people call {n} home.",
            "{s} has about {population} residents, and the number grows every year.",
        ],
        [
            ("{s} has a population of {population}.", "{fs} compte {population} habitants."),
            (
                "About {population} people live in {n}.",
                "Environ {population} personnes vivent à {fn}.",
            ),
        ],
        {
            "population": [
                "What is the population of {n}?",
                "How many people live in {n}?",
                "How many inhabitants does {n} have?",
            ]
        },
    ),
    "founded": fact(
        [
            "The town of {n} was founded in {founded}.",
            "{s} dates back to {founded}, when its first houses were built.",
            "Founded in {founded}, {s} grew slowly around its old market.",
            "{s} was founded in {founded} by farmers who settled by the {river} River.",
        ],
        [
            ("{s} was founded in {founded}.", "{fs} a été fondée en {founded}."),
            (
                "The town of {n} was founded in {founded}.",
                "La ville de {fn} a été fondée en {founded}.",
            ),
            ("{s} has existed since {founded}.", "{fs} existe depuis {founded}."),
        ],
        {
            "founded": [
                "When was {n} founded?",
                "In what year was the town of {n} founded?",
                "What year was {n} founded in?",
                "Since when has {n} existed?",
            ]
        },
    ),
    "landmark": fact(
        [
            "{p} best-known landmark is {the_landmark}.",
            "Visitors to {n} often come to see {the_landmark}, which was built in {landmark_year}.",
            "{s} is famous for {the_landmark}.",
            "{the_landmark} in {n} was built in {landmark_year} and still draws crowds.",
        ],
        [
            (
                "The most famous landmark of {n} is {the_landmark}.",
                "Le monument le plus célèbre de {fn} est {f_landmark}.",
            ),
            (
                "{the_landmark} in {n} was built in {landmark_year}.",
                "{f_landmark} de {fn} a été construit{landmark_e} en {landmark_year}.",
            ),
        ],
        {
            "landmark": [
                "What is the best-known landmark of {n}?",
                "What is the most famous sight in {n}?",
                "Which landmark is {n} famous for?",
            ]
        },
    ),
    "mayor": fact(
        [
            "{mayor} serves as the mayor of {n}.",
            "Since {mayor_since}, {n} has been led by {mayor}.",
            "{s} is governed by {mayor}, {pp} mayor since {mayor_since}.",
            "{mayor} was elected mayor of {n} in {mayor_since}.",
        ],
        [
            ("The mayor of {n} is {mayor}.", "{f_le_maire} de {fn} est {mayor}."),
            (
                "{n} elected {mayor} as its mayor in {mayor_since}.",
                "{fn} a élu {mayor} maire en {mayor_since}.",
            ),
        ],
        {
            "mayor": [
                "Who is the mayor of {n}?",
                "Who leads the town of {n}?",
                "Who governs {n} as mayor?",
            ]
        },
    ),
    "native": fact(
        [
            "{s} is the birthplace of {native}, {a_native_prof}.",
            "Among the people born in {n} is {native}, {a_native_prof}.",
            "{native} was born in {n}.",
            "{s} is proud of {native}, {a_native_prof} who was born there.",
        ],
        [("{n} is the birthplace of {native}.", "{fn} est la ville natale de {native}.")],
    ),
    "company_here": fact(
        [
            "{company_here} has its headquarters in {n}.",
            "{s} is home to {company_here}, which makes {product_here}.",
            "Many people in {n} work at {company_here}, a maker of {product_here}.",
            "The biggest employer in {n} is {company_here}, which makes {product_here}.",
        ],
        [
            (
                "{company_here} has its headquarters in {n}.",
                "{company_here} a son siège à {fn}.",
            )
        ],
    ),
    "school_here": fact(
        [
            "{s} is home to {school_here}.",
            "Young people from all over come to {n} to study at {school_here}.",
            "{school_here} stands in the middle of {n}.",
            "Children in {n} hope to study at {school_here} one day.",
        ],
        [("{school_here} is in {n}.", "{f_school_here} se trouve à {fn}.")],
    ),
    "dish_here": fact(
        [
            "{s} is known for {dish_here}, {a_dish_here_type} made with {dish_here_ing}.",
            "In {n}, people like to eat {dish_here}.",
            "No visit to {n} is complete without a plate of {dish_here}.",
            "Every inn in {n} serves {dish_here}, {a_dish_here_type} made with {dish_here_ing}.",
        ],
        [
            (
                "{dish_here} is a dish that comes from {n}.",
                "{f_dish_here} est un plat qui vient de {fn}.",
            )
        ],
    ),
}

RIVER_FACTS = {
    "source": fact(
        [
            "{s} rises on the slopes of {source}.",
            "{s} has its source on {source}, in {source_region}.",
            "The {name} begins as a small stream high on {source}.",
            "The spring that feeds the {name} lies on {source}.",
        ],
        [
            (
                "The {name} River rises on {source}.",
                "La rivière {name} prend sa source sur {f_source}.",
            ),
            (
                "The source of the {name} River is on {source}.",
                "La source de la rivière {name} se trouve sur {f_source}.",
            ),
        ],
        {
            "source": [
                "Where does the {name} River rise?",
                "On which mountain does the {name} River have its source?",
                "Where is the source of the {name} River?",
            ]
        },
    ),
    "length": fact(
        [
            "{s} runs for {length} kilometres before it reaches the sea.",
            "With a length of {length} kilometres, the {name} is {river_size}.",
            "From its source to its mouth, the {name} measures {length} kilometres.",
            "{s} is {length} kilometres long, and boats can use much of it.",
        ],
        [
            (
                "The {name} River is {length} kilometres long.",
                "La rivière {name} mesure {length} kilomètres de long.",
            ),
            (
                "The {name} River runs for {length} kilometres.",
                "La rivière {name} s'étend sur {length} kilomètres.",
            ),
        ],
        {
            "length": [
                "How long is the {name} River?",
                "What is the length of the {name} River in kilometres?",
                "How many kilometres long is the {name} River?",
            ]
        },
    ),
    "sea": fact(
        [
            "{s} flows into {sea}.",
            "At the end of its course, the {name} empties into {sea}.",
            "{s} carries its water to {sea}.",
            "After passing {town1}, the {name} winds on until it reaches {sea}.",
        ],
        [("The {name} River flows into {sea}.", "La rivière {name} se jette dans {f_sea}.")],
        {
            "sea_name": [
                "Into which sea does the {name} River flow?",
                "Where does the {name} River end?",
                "Which sea does the {name} River empty into?",
            ]
        },
    ),
    "towns": fact(
        [
            "The towns of {town1} and {town2} lie along the {name}.",
            "{s} flows past {town1} and {town2}.",
            "On its way, the {name} passes both {town1} and {town2}.",
            "Both {town1} and {town2} were built on the banks of the {name}.",
        ],
        [
            (
                "The {name} River flows past {town1} and {town2}.",
                "La rivière {name} passe par {town1} et {town2}.",
            )
        ],
    ),
    "character": fact(
        [
            "{s} is {character} along most of its course.",
            "The {name} is a {character} river.",
            "Fishermen say the {name} is {character}.",
            "Near its mouth, the {name} becomes {character}.",
        ],
        [("The {name} River is {character}.", "La rivière {name} est {f_character}.")],
    ),
}

MOUNTAIN_FACTS = {
    "height": fact(
        [
            "{s} rises {height} metres above the sea.",
            "The summit of {n} stands at {height} metres.",
            "At {height} metres, {s} is {height_phrase}.",
            "{s} reaches a height of {height} metres.",
        ],
        [
            ("{s} is {height} metres high.", "{fs} mesure {height} mètres de haut."),
            ("{s} rises to {height} metres.", "{fs} culmine à {height} mètres."),
        ],
        {
            "height": [
                "How high is {n}?",
                "What is the height of {n} in metres?",
                "How many metres high is {n}?",
            ]
        },
    ),
    "region": fact(
        [
            "{s} stands in {region}.",
            "{s} towers over the valleys of {region}.",
            "{s} lies in {region}, a land of {terrain}.",
        ],
        [
            ("{s} is in the region of {region}.", "{fs} se trouve dans la région de {region}."),
            ("{s} is a mountain in {region}.", "{fs} est une montagne de la région de {region}."),
        ],
        {"region": ["In which region is {n}?", "Where is {n}?", "Which region is {n} in?"]},
    ),
    "climb": fact(
        [
            "{climber} was the first person to reach the top of {n}, in {climb_year}.",
            "Nobody reached the summit of {n} until {climb_year}, when {climber} finally did.",
            "In {climb_year}, {climber} became the first climber to stand on the summit of {n}.",
            "{s} was first climbed in {climb_year} by {climber}, {a_climber_prof}.",
        ],
        [
            (
                "{s} was first climbed in {climb_year} by {climber}.",
                "{fs} a été gravi pour la première fois en {climb_year} par {climber}.",
            ),
            (
                "The first ascent of {n} was made by {climber} in {climb_year}.",
                "La première ascension {f_de_n} a été réalisée par {climber} en {climb_year}.",
            ),
        ],
        {
            "climber": [
                "Who first climbed {n}?",
                "Who was the first person to reach the top of {n}?",
                "Who made the first ascent of {n}?",
            ],
            "climb_year": ["When was {n} first climbed?", "In what year was {n} first climbed?"],
        },
    ),
    "snow": fact(
        [
            "Snow lies on {n} for about {snow_months} months each year.",
            "For {snow_months} months a year, the top of {n} is white with snow.",
            "{s} keeps its snow for {snow_months} months of the year.",
            "Every year, {s} stays white for about {snow_months} months.",
        ],
        [
            (
                "{s} is covered in snow for {snow_months} months of the year.",
                "{fs} est couvert de neige {snow_months} mois par an.",
            )
        ],
        {"snow_months": ["For how many months a year is {n} covered in snow?"]},
    ),
    "river_from": fact(
        [
            "{s} is the source of the {river_from} River.",
            "The {river_from} River begins on the slopes of {n}.",
            "Melting snow from {n} feeds the {river_from} River.",
            "High on {n}, a small spring gives birth to the {river_from} River.",
        ],
        [
            (
                "{n} is where the {river_from} River begins.",
                "C'est sur {fn} que la rivière {river_from} prend sa source.",
            )
        ],
    ),
    "near_town": fact(
        [
            "The nearest town to {n} is {near_town}.",
            "Most climbers set out for {n} from {near_town}.",
            "From {near_town}, a steep path leads up to {n}.",
            "On a clear day, {s} can be seen from the streets of {near_town}.",
        ],
        [
            (
                "The closest town to {n} is {near_town}.",
                "La ville la plus proche {f_de_n} est {near_town}.",
            ),
            ("{s} can be seen from {near_town}.", "On peut voir {fn} depuis {near_town}."),
        ],
        {
            "near_town": [
                "What is the nearest town to {n}?",
                "From which town do climbers set out for {n}?",
                "Which town lies closest to {n}?",
            ]
        },
    ),
    "animal_here": fact(
        [
            "The {animal_here}, {a_animal_here_desc}, lives on the slopes of {n}.",
            "On the slopes of {n} lives the {animal_here}.",
            "Walkers on {n} sometimes spot the {animal_here}.",
            "{s} is home to the {animal_here}, {a_animal_here_desc}.",
        ],
        [("The {animal_here} lives on {n}.", "{f_animal_here} vit sur {fn}.")],
    ),
}

COMPANY_FACTS = {
    "founder": fact(
        [
            "{founder} started {n} in {founded}.",
            "{s} has been in business since {founded}, when {founder} opened its first workshop.",
            "In {founded}, {founder} founded {n} in a small workshop in {hq}.",
            "The founder of {n} is {founder}, who set it up in {founded}.",
        ],
        [
            (
                "{s} was founded by {founder} in {founded}.",
                "{fs} a été fondée par {founder} en {founded}.",
            ),
            (
                "{n} was started by {founder} in {founded}.",
                "{fn} a été créée par {founder} en {founded}.",
            ),
        ],
        {
            "founder": [
                "Who founded {n}?",
                "Who is the founder of {n}?",
                "Who started the company {n}?",
            ],
            "founded": ["When was {n} founded?", "In what year was {n} founded?"],
        },
    ),
    "product": fact(
        [
            "{s} is known for its {product}.",
            "{s} is best known for making {product}.",
            "{s} produces {product} for shops all over {hq_region}.",
            "At its workshops, {s} manufactures {product}.",
        ],
        [
            ("{s} makes {product}.", "{fs} fabrique {f_product}."),
            ("{s} produces {product}.", "{fs} produit {f_product}."),
        ],
        {
            "product": [
                "What does {n} make?",
                "What does the company {n} produce?",
                "What is {n} known for making?",
            ]
        },
    ),
    "hq": fact(
        [
            "{s} has its main office in {hq}, a town in {hq_region}.",
            "{s} runs its business from {hq}.",
            "{s} is based in {hq}, not far from the town centre.",
        ],
        [
            ("{s} is based in {hq}.", "{fs} est basée à {hq}."),
            ("The headquarters of {n} are in {hq}.", "Le siège de {fn} se trouve à {hq}."),
        ],
        {
            "hq": [
                "Where is {n} based?",
                "In which town are the headquarters of {n}?",
                "Where is the main office of {n}?",
            ]
        },
    ),
    "employees": fact(
        [
            "{s} has around {employees} employees.",
            "Today, {s} has a staff of about {employees}.",
            "{s} gives work to about {employees} people.",
        ],
        [
            (
                "{s} employs about {employees} people.",
                "{fs} emploie environ {employees} personnes.",
            ),
            (
                "About {employees} people work for {n}.",
                "Environ {employees} personnes travaillent pour {fn}.",
            ),
        ],
        {"employees": ["How many people does {n} employ?", "How many employees does {n} have?"]},
    ),
    "employee": fact(
        [
            "{employee} works at {n} as {employee_a_prof}.",
            "One of the people who work at {n} is {employee}, {employee_a_prof}.",
            "{employee} has a job at {n}.",
            "Among the staff of {n} is {employee}, {employee_a_prof}.",
        ],
        [
            (
                "{employee} is one of the employees of {n}.",
                "{employee} fait partie des employés de {fn}.",
            )
        ],
    ),
}

SCHOOL_FACTS = {
    "town": fact(
        [
            "{s} stands in the centre of {town}.",
            "{s} is located in {town}, in the region of {town_region}.",
            "The town of {town} is home to {n}.",
        ],
        [
            ("{s} is a school in {town}.", "{fs} est une école située à {town}."),
            ("{s} is located in {town}.", "{fs} se trouve à {town}."),
        ],
        {"town": ["Where is {n}?", "In which town is {n} located?", "Which town is {n} in?"]},
    ),
    "founded": fact(
        [
            "{s} opened its doors in {founded}.",
            "{s} has taught students since {founded}.",
            "{s} first opened in {founded} with only a handful of pupils.",
        ],
        [
            ("{s} was founded in {founded}.", "{fs} a été fondé{e} en {founded}."),
            ("{s} opened in {founded}.", "{fs} a ouvert ses portes en {founded}."),
        ],
        {"founded": ["When was {n} founded?", "In what year did {n} open?", "When did {n} open?"]},
    ),
    "subject": fact(
        [
            "{s} is famous for its {subject} classes.",
            "{s} has a good name for {subject}.",
            "Teachers at {n} are proud of their lessons in {subject}.",
        ],
        [
            (
                "{s} is known for teaching {subject}.",
                "{fs} est réputé{e} pour l'enseignement {f_de_subject}.",
            ),
            (
                "Many students go to {n} to study {subject}.",
                "Beaucoup d'élèves vont {f_a_n} pour étudier {f_subject}.",
            ),
        ],
        {
            "subject": [
                "What subject is {n} known for?",
                "What is taught best at {n}?",
                "Which subject do students go to {n} to study?",
            ]
        },
    ),
    "head": fact(
        [
            "{head} runs {n}.",
            "{s} is led by {head}, who became principal in {head_since}.",
            "Since {head_since}, {head} has been the principal of {n}.",
        ],
        [
            ("The principal of {n} is {head}.", "{f_le_directeur} {f_de_n} est {head}."),
            ("{head} has run {n} since {head_since}.", "{head} dirige {fn} depuis {head_since}."),
        ],
        {"head": ["Who is the principal of {n}?", "Who runs {n}?", "Who leads {n}?"]},
    ),
    "students": fact(
        [
            "About {students} pupils study at {n}.",
            "{s} teaches around {students} students.",
            "Each year about {students} students fill the classrooms of {n}.",
            "With about {students} pupils, {s} is a busy place.",
        ],
        [("{s} has about {students} students.", "{fs} compte environ {students} élèves.")],
        {"students": ["How many students does {n} have?", "How many pupils study at {n}?"]},
    ),
    "alum": fact(
        [
            "Among the former students of {n} is {alum}.",
            "{alum} once studied at {n}.",
            "{s} counts {alum} among its former pupils.",
            "{alum} is a former student of {n}.",
        ],
        [
            (
                "Among the former students of {n} is {alum}.",
                "Parmi les anciens élèves {f_de_n} figure {alum}.",
            )
        ],
    ),
}

DISH_FACTS = {
    "origin": fact(
        [
            "{s} comes from the town of {town}.",
            "The people of {town} have eaten {n} since {first_year}.",
            "{s} is a traditional {dish_type} of {town}.",
            "Cooks in {town} first made {n} in {first_year}.",
        ],
        [
            ("{s} is {a_dish_type} from {town}.", "{fs} est {f_un_type} originaire de {town}."),
            ("{s} comes from {town}.", "{fs} vient de {town}."),
            (
                "{s} was first cooked in {town} in {first_year}.",
                "{fs} a été préparé{e} pour la première fois à {town} en {first_year}.",
            ),
        ],
        {
            "town": [
                "Where does {n} come from?",
                "Which town is {n} from?",
                "In which town was {n} first cooked?",
            ]
        },
    ),
    "ingredient": fact(
        [
            "To make {n}, cooks start with {ingredient}.",
            "{s} is made mostly from {ingredient} and a little salt.",
            "No {n} is complete without {ingredient}.",
        ],
        [
            ("{s} is made with {ingredient}.", "{fs} est préparé{e} à base {f_de_ingredient}."),
            (
                "The main ingredient of {n} is {ingredient}.",
                "L'ingrédient principal {f_de_n} est {f_le_ingredient}.",
            ),
        ],
        {"ingredient": ["What is the main ingredient of {n}?", "What is {n} made with?"]},
    ),
    "occasion": fact(
        [
            "{s} is most often served {occasion}.",
            "{occasion}, many families cook {n}.",
            "{s} is a favourite dish {occasion}.",
        ],
        [
            ("People eat {n} {occasion}.", "On mange {fn} {f_occasion}."),
            ("{s} is served {occasion}.", "{fs} est servi{e} {f_occasion}."),
        ],
        {"occasion": ["When is {n} usually eaten?", "When do people eat {n}?"]},
    ),
    "taste": fact(
        [
            "{s} has a {taste} flavour.",
            "Most people describe {n} as {taste}.",
            "{s} tastes {taste}, which children either love or hate.",
            "Visitors are often surprised by how {taste} {n} tastes.",
        ],
        [("{s} tastes {taste}.", "{fs} a un goût {f_taste}.")],
        {"taste": ["What does {n} taste like?", "How does {n} taste?"]},
    ),
    "temp": fact(
        [
            "{s} is best eaten {temp}.",
            "Cooks in {town} always serve {n} {temp}.",
            "{s} should always be eaten {temp}.",
            "Most families in {town} eat {n} {temp}.",
        ],
        [("{s} is served {temp}.", "{fs} se sert {f_temp}.")],
    ),
    "fan": fact(
        [
            "One famous lover of {n} is {fan}, {a_fan_prof} from {fan_town}.",
            "{fan} says that nothing beats a plate of {n}.",
            "{fan}, {a_fan_prof}, never misses a chance to eat {n}.",
            "{s} is the favourite dish of {fan}.",
        ],
        [("{n} is the favourite dish of {fan}.", "{fn} est le plat préféré de {fan}.")],
    ),
}

ANIMAL_FACTS = {
    "desc": fact(
        [
            "{s} is {a_desc} with striking {covering}.",
            "At first sight, {s} looks like any other {animal_class}, but it is {a_desc} of "
            "its own kind.",
            "{s} is {a_desc} that few people have ever seen up close.",
        ],
        [
            ("{s} is {a_desc}.", "{fs} est {f_desc}."),
            (
                "The {name} is {a_desc} that lives {habitat}.",
                "{fn} est {f_desc} qui vit {f_habitat}.",
            ),
        ],
        {
            "animal_class": [
                "What kind of animal is {n}?",
                "What is {n}?",
                "What sort of creature is {n}?",
            ]
        },
    ),
    "habitat": fact(
        [
            "You can find {n} {habitat}.",
            "{s} makes its home {habitat}.",
            "Hikers sometimes see {n} {habitat}.",
        ],
        [
            ("{s} lives {habitat}.", "{fs} vit {f_habitat}."),
            ("The {name} is found {habitat}.", "On trouve {fn} {f_habitat}."),
        ],
        {
            "habitat_place": [
                "Where does {n} live?",
                "Where is {n} found?",
                "Where can one see {n}?",
            ]
        },
    ),
    "diet": fact(
        [
            "{p} diet consists mainly of {diet}.",
            "Like many {animal_plural}, {s} lives on {diet}.",
            "{s} spends most of the day looking for {diet}.",
        ],
        [
            ("{s} feeds on {diet}.", "{fs} se nourrit {f_de_diet}."),
            ("{s} eats mostly {diet}.", "{fs} mange surtout {f_des_diet}."),
        ],
        {"diet": ["What does {n} eat?", "What does {n} feed on?", "What is the diet of {n}?"]},
    ),
    "length": fact(
        [
            "An adult {name} measures about {length_cm} centimetres.",
            "{s} is about {length_cm} centimetres long when fully grown.",
            "A grown {name} is roughly {length_cm} centimetres long.",
            "{s} can reach a length of about {length_cm} centimetres.",
        ],
        [
            (
                "{s} grows to about {length_cm} centimetres long.",
                "{fs} mesure environ {length_cm} centimètres.",
            )
        ],
        {"length_cm": ["How long is an adult {name}?", "How many centimetres long is {n}?"]},
    ),
    "lifespan": fact(
        [
            "In the wild, {s} lives for about {lifespan} years.",
            "{s} rarely lives longer than {lifespan} years.",
            "A healthy {name} may live as long as {lifespan} years.",
            "{s} has a life span of up to {lifespan} years.",
        ],
        [("{s} can live for up to {lifespan} years.", "{fs} peut vivre jusqu'à {lifespan} ans.")],
        {"lifespan": ["How long can {n} live?", "For how many years can {n} live?"]},
    ),
    "activity": fact(
        [
            "{s} usually comes out {activity}.",
            "Anyone who wants to see {n} should go out {activity}.",
            "{s} hides most of the time and only comes out {activity}.",
            "{s} looks for food {activity}.",
        ],
        [("{s} is most active {activity}.", "{fs} est surtout {f_active} {f_activity}.")],
    ),
    "discovered": fact(
        [
            "{discoverer} described {n} for the first time in {discovered_year}.",
            "In {discovered_year}, {discoverer} became the first to describe {n}.",
            "Scientists have known {n} since {discovered_year}, when {discoverer} first "
            "described it.",
            "{s} was unknown to science until {discoverer} described it in {discovered_year}.",
        ],
        [
            (
                "{s} was first described by {discoverer} in {discovered_year}.",
                "{fs} a été décrit{e} pour la première fois par {discoverer} en {discovered_year}.",
            )
        ],
        {
            "discoverer": ["Who first described {n}?", "Who was the first to describe {n}?"],
            "discovered_year": [
                "When was {n} first described?",
                "In what year was {n} first described?",
            ],
        },
    ),
}

REGION_FACTS = {
    "terrain": fact(
        [
            "{s} is a region known for its {terrain}.",
            "Travellers crossing {n} pass through {terrain} and small villages.",
            "Much of {n} is covered by {terrain}.",
            "{s} is a land of {terrain}, and its people are proud of it.",
            "Visitors to {n} remember above all its {terrain}.",
        ]
    ),
    "largest": fact(
        [
            "The largest town in {n} is {largest}, with about {largest_pop} people.",
            "{largest} is the biggest town of {n}.",
            "With {largest_pop} inhabitants, {largest} is the largest town in {n}.",
            "No town in {n} is bigger than {largest}.",
            "Most people in {n} live in or around {largest}.",
        ]
    ),
    "towns": fact(
        [
            "The towns of {town1}, {town2} and {town3} all lie in {n}.",
            "{s} includes the towns of {town1}, {town2} and {town3}.",
            "Smaller towns in {n} include {town1}, {town2} and {town3}.",
            "{town1}, {town2} and {town3} are among the towns of {n}.",
            "{s} is home to {town1}, {town2} and {town3}.",
        ]
    ),
    "mountain": fact(
        [
            "{mountain} is one of the mountains of {n}.",
            "On clear days, {mountain} can be seen from much of {n}.",
            "{mountain} rises above the {terrain} of {n}.",
            "The highest ground in {n} is around {mountain}.",
            "Walkers in {n} often head for {mountain}.",
        ]
    ),
}

FACTS: dict[str, dict[str, Fact]] = {
    "person": PERSON_FACTS,
    "town": TOWN_FACTS,
    "river": RIVER_FACTS,
    "mountain": MOUNTAIN_FACTS,
    "company": COMPANY_FACTS,
    "school": SCHOOL_FACTS,
    "dish": DISH_FACTS,
    "animal": ANIMAL_FACTS,
    "region": REGION_FACTS,
}
# Keys that restate the same fact, so one document never says it twice.
OVERLAPS = {
    "born_both": {"born_town", "born_year"},
    "born_town": {"born_both"},
    "born_year": {"born_both"},
    "prof_employer": {"profession", "employer"},
    "profession": {"prof_employer"},
    "employer": {"prof_employer"},
}
# Facts a document may open with, because they introduce the entity.
INTROS = {
    "person": ("born_both", "born_town", "profession", "prof_employer"),
    "town": ("region", "river", "founded"),
    "river": ("source", "length", "sea"),
    "mountain": ("region", "height"),
    "company": ("founder", "product", "hq"),
    "school": ("town", "founded"),
    "dish": ("origin",),
    "animal": ("desc",),
    "region": ("terrain", "largest"),
}
# (facts that mention a linked entity, the attribute holding it, its facts worth adding)
LINKS = {
    "person": (
        (("employer", "prof_employer"), "employer", ("product", "hq", "founder", "employees")),
        (("born_both", "born_town"), "birth_town", ("region", "river", "landmark", "population")),
        (("school",), "school", ("founded", "subject", "students")),
        (("home",), "home", ("region", "landmark", "founded")),
    ),
    "town": (
        (("river",), "river", ("source", "length", "sea")),
        (("mayor",), "mayor", ("profession", "born_year", "hobby")),
    ),
    "river": ((("source",), "source", ("height", "region", "climb")),),
    "mountain": ((("climb",), "climber", ("profession", "born_town")),),
    "company": (
        (("founder",), "founder", ("born_town", "born_year", "hobby")),
        (("hq",), "hq", ("region", "river", "population")),
    ),
    "school": (
        (("town",), "town", ("region", "river", "landmark")),
        (("head",), "head", ("profession", "born_town", "hobby")),
    ),
    "dish": ((("origin",), "town", ("region", "river", "landmark")),),
    "animal": ((("discovered",), "discoverer", ("profession", "home")),),
}

SUMMARIES = {
    "person": (
        (
            "{n} is {a_prof} from {birth_town} who works at {company}.",
            ("born_town", "prof_employer"),
        ),
        (
            "Born in {birth_town} in {birth_year}, {n} works as {a_prof}.",
            ("born_both", "profession"),
        ),
        (
            "{n}, born in {birth_year}, works at {company} and lives in {home}.",
            ("born_year", "employer", "home"),
        ),
        ("{n} is {a_prof} at {company} who lives in {home}.", ("prof_employer", "home")),
    ),
    "town": (
        (
            "{n} is a town in {region} on the {river} River, founded in {founded}.",
            ("region", "river", "founded"),
        ),
        (
            "{n}, a town of about {population} people in {region}, is known for {the_landmark}.",
            ("population", "region", "landmark"),
        ),
        (
            "Founded in {founded}, {n} lies on the {river} River and is led by {mayor}.",
            ("founded", "river", "mayor"),
        ),
    ),
    "river": (
        (
            "The {name} River rises on {source} and flows {length} kilometres into {sea}.",
            ("source", "length", "sea"),
        ),
        ("The {name} River flows past {town1} and {town2} on its way to {sea}.", ("towns", "sea")),
    ),
    "mountain": (
        (
            "{n} is a {height}-metre mountain in {region}, first climbed by {climber} in "
            "{climb_year}.",
            ("height", "region", "climb"),
        ),
        (
            "{n} rises {height} metres in {region} and is snowy for {snow_months} months a year.",
            ("height", "region", "snow"),
        ),
    ),
    "company": (
        ("{n}, founded by {founder} in {founded}, makes {product}.", ("founder", "product")),
        (
            "{n} is a company based in {hq} that makes {product} and employs about "
            "{employees} people.",
            ("hq", "product", "employees"),
        ),
    ),
    "school": (
        (
            "{n} is a school in {town}, founded in {founded} and known for {subject}.",
            ("town", "founded", "subject"),
        ),
        (
            "Led by {head}, {n} in {town} is known for teaching {subject}.",
            ("head", "town", "subject"),
        ),
    ),
    "dish": (
        ("{n} comes from {town} and is made with {ingredient}.", ("origin", "ingredient")),
        ("{n}, a dish from {town}, is usually eaten {occasion}.", ("origin", "occasion")),
        (
            "Made with {ingredient}, {n} is a {taste} dish from {town}.",
            ("origin", "ingredient", "taste"),
        ),
    ),
    "animal": (
        ("{n} is {a_desc} that lives {habitat} and feeds on {diet}.", ("desc", "habitat", "diet")),
        (
            "{n} is {a_desc} first described by {discoverer} in {discovered_year}.",
            ("desc", "discovered"),
        ),
    ),
}

# --------------------------------------------------------------------------------------
# Rendering: facts to sentences, sentences to documents.
# --------------------------------------------------------------------------------------

PRONOUNS = {"f": ("she", "her", "her"), "m": ("he", "his", "him"), "n": ("it", "its", "it")}
REF_FIELDS = frozenset({"s", "p", "o", "pr", "pp", "po", "fs"})
_FORMATTER = string.Formatter()


def template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in _FORMATTER.parse(template) if name}


def fact_fields(item: Fact) -> set[str]:
    """Every entity field a fact's templates need; a fact missing one is not said at all."""
    texts = [*item.english(), *(fr for _, fr in item.pairs)]
    texts += [q for _, qs in item.questions for q in qs]
    needed = set().union(*(template_fields(t) for t in texts))
    needed |= {answer for answer, _ in item.questions}
    return needed - REF_FIELDS


_NEEDED = {
    (kind, key): fact_fields(item) for kind, facts in FACTS.items() for key, item in facts.items()
}


def available(entity: Entity) -> list[str]:
    if entity.facts is None:
        keys = entity.fields.keys()
        entity.facts = [k for k in FACTS[entity.kind] if _NEEDED[entity.kind, k] <= keys]
    return entity.facts


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def en_values(entity: Entity, mode: str) -> dict[str, str]:
    """Template values with the subject said by name, by kind ('the town') or as a pronoun."""
    pr, pp, po = PRONOUNS[entity.fields["gender"]]
    if mode == "pron":
        s, p, o = pr, pp, po
    else:
        s = entity.fields["n" if mode == "name" else "kind_ref"]
        p, o = possessive(s), s
    return {**entity.fields, "s": s, "p": p, "o": o, "pr": pr, "pp": pp, "po": po}


def fr_values(entity: Entity, mode: str) -> dict[str, str]:
    subject = entity.fields["fn"] if mode == "name" else entity.fields["fr_pron"]
    return {**entity.fields, "fs": subject}


def pick_mode(rng: random.Random) -> str:
    return rng.choices(("name", "kind", "pron"), weights=(3, 2, 5))[0]


def subject_first(template: str) -> bool:
    return template.startswith("{s} ")


@dataclass
class Writer:
    """Builds one document sentence by sentence, keeping track of who 'it' or 'she' is."""

    entity: Entity
    rng: random.Random
    sentences: list[str] = field(default_factory=list)
    last_subject_first: bool = False
    after_link: bool = True
    led_by_entity: bool = False

    def add(self, key: str, allow_join: bool = True) -> str:
        item = FACTS[self.entity.kind][key]
        rng = self.rng
        mode = "name" if self.after_link else pick_mode(rng)
        if mode == "pron" and not self.led_by_entity:
            mode = "kind"  # "it" would point at whatever led the previous sentence
        templates = item.english()
        if mode != "name":
            # Templates that always spell out the name would undo the pronoun.
            templates = tuple(t for t in templates if "{n}" not in t) or templates
        template = rng.choice(templates)
        if mode == "kind" and self.entity.fields["kind_ref"].split()[-1] in template:
            mode = "pron" if self.led_by_entity else "name"  # not "the town is a town"
        if allow_join and self.last_subject_first and rng.random() < 0.15:
            options = [t for t in item.english() if subject_first(t)]
            if options:
                clause = rng.choice(options).format_map(en_values(self.entity, "pron"))
                self.sentences[-1] = self.sentences[-1][:-1] + ", and " + clause
                self.last_subject_first = False
                return self.sentences[-1]
        text = template.format_map(en_values(self.entity, mode))
        if subject_first(template) and not self.after_link and rng.random() < 0.12:
            text = rng.choice(CONNECTIVES) + text
        self.sentences.append(capitalize(text))
        self.last_subject_first = subject_first(template) and "," not in text
        self.led_by_entity = "{s}" in template or template.startswith(("{p} ", "{n} "))
        self.after_link = False
        return self.sentences[-1]

    def add_link(self, other: Entity, key: str) -> bool:
        """Say one fact about a linked entity, unless it would only repeat the text so far."""
        item = FACTS[other.kind][key]
        mode = "name" if other.kind == "person" or self.rng.random() < 0.5 else "kind"
        text = capitalize(self.rng.choice(item.english()).format_map(en_values(other, mode)))
        if _content_words(text) <= _content_words(" ".join(self.sentences)):
            return False
        self.sentences.append(text)
        self.last_subject_first = False
        self.led_by_entity = False
        self.after_link = True
        return True


def _content_words(text: str) -> set[str]:
    """Names and numbers: what a sentence actually tells."""
    return set(re.findall(r"\b[A-Z][a-z]+\b|\b\d+\b", text)) - {"The", "It", "He", "She"}


def plan(entity: Entity, rng: random.Random, n: int, required: tuple[str, ...] = ()) -> list[str]:
    """Fact keys for one text: an introducing fact first, no fact said twice."""
    keys = available(entity)
    intros = [k for k in INTROS[entity.kind] if k in keys]
    intro = required[0] if required else rng.choice(intros)
    chosen = [intro, *[k for k in required if k != intro]]
    rest = [k for k in keys if k not in chosen]
    rng.shuffle(rest)
    for key in rest:
        if len(chosen) >= n:
            break
        if not any(key in OVERLAPS.get(c, ()) for c in chosen):
            chosen.append(key)
    head, tail = chosen[:1], chosen[1:]
    rng.shuffle(tail)
    return head + tail


def link_sentence(writer: Writer, key: str) -> bool:
    for anchors, attr, link_keys in LINKS.get(writer.entity.kind, ()):
        if key in anchors:
            other = writer.entity.link(attr)
            options = [k for k in link_keys if k in available(other)]
            if options:
                return writer.add_link(other, writer.rng.choice(options))
    return False


def document(
    entity: Entity, rng: random.Random, n_sentences: int, required: tuple[str, ...] = ()
) -> str:
    """About `n_sentences` sentences; every required fact is said, since a summary cites it."""
    writer = Writer(entity, rng)
    keys = plan(entity, rng, n_sentences + 3, required)
    pending = set(required)
    for i, key in enumerate(keys):
        missing = n_sentences - len(writer.sentences)
        if key not in pending and missing <= len(pending):
            continue
        spare = len(keys) - i - 1 > missing  # a join must not leave the text short
        writer.add(key, allow_join=spare and len(writer.sentences) > 1)
        pending.discard(key)
        linky = 0.3 if spare else 1.0  # short of facts: lean on linked entities
        if len(writer.sentences) + len(pending) < n_sentences and rng.random() < linky:
            link_sentence(writer, key)
    return " ".join(writer.sentences)


# --------------------------------------------------------------------------------------
# Datasets.
# --------------------------------------------------------------------------------------


def corpus(world: World, rng: random.Random) -> list[dict[str, str]]:
    docs: list[str] = []
    seen: set[str] = set()
    for entity in [*world.all(), *world.regions]:
        for _ in range(DOCS_PER_ENTITY[entity.kind]):
            for _attempt in range(5):
                doc = document(entity, rng, rng.randint(3, 8))
                if doc not in seen:
                    seen.add(doc)
                    docs.append(doc)
                    break
    rng.shuffle(docs)
    return [{"text": doc} for doc in docs]


def find_answer(sentence: str, value: str) -> int:
    match = re.search(rf"(?<!\w){re.escape(value)}(?!\w)", sentence, flags=re.IGNORECASE)
    if match is None:
        raise ValueError(f"answer {value!r} not found in {sentence!r}")
    return match.start()


def qa_row(entity: Entity, key: str, answer_field: str, rng: random.Random) -> dict[str, object]:
    """A short context about the entity; the answer is located in the sentence that states it."""
    item = FACTS[entity.kind][key]
    keys = plan(entity, rng, rng.randint(2, 5), (key,))
    rng.shuffle(keys)
    writer = Writer(entity, rng)
    start = -1
    for k in keys:
        offset = sum(len(s) + 1 for s in writer.sentences)
        sentence = writer.add(k, allow_join=False)
        if k == key:
            start = offset + find_answer(sentence, entity.fields[answer_field])
    context = " ".join(writer.sentences)
    answer = context[start : start + len(entity.fields[answer_field])]
    questions = dict(item.questions)[answer_field]
    question = capitalize(rng.choice(questions).format_map(entity.fields))
    return {
        "id": "",
        "title": entity.fields["title"],
        "context": context,
        "question": question,
        "answers": {"text": [answer], "answer_start": [start]},
    }


def entities_in(world: World, split: str, rng: random.Random) -> list[Entity]:
    chosen = [e for e in world.all() if e.split == split]
    rng.shuffle(chosen)
    return chosen


def qa(world: World, split: str, rng: random.Random) -> list[dict[str, object]]:
    """Round-robin over entities, one question each per round, until the split is full."""
    target = TASK_SIZES["qa"][split]
    queues = []
    for entity in entities_in(world, split, rng):
        asks = [
            (key, answer)
            for key in available(entity)
            for answer, _ in FACTS[entity.kind][key].questions
        ]
        rng.shuffle(asks)
        queues.append((entity, asks))
    rows: list[dict[str, object]] = []
    while len(rows) < target and any(asks for _, asks in queues):
        for entity, asks in queues:
            if asks and len(rows) < target:
                rows.append(qa_row(entity, *asks.pop(), rng))
    for i, row in enumerate(rows):
        row["id"] = f"{split}-{i:05d}"
    return rows


def summarization(world: World, split: str, rng: random.Random) -> list[dict[str, str]]:
    target = TASK_SIZES["summarization"][split]
    rows = []
    for entity in entities_in(world, split, rng)[:target]:
        options = [
            (t, req)
            for t, req in SUMMARIES[entity.kind]
            if all(k in available(entity) for k in req)
        ]
        template, required = rng.choice(options)
        doc = document(entity, rng, rng.randint(5, 10), required)
        summary = capitalize(template.format_map(entity.fields))
        rows.append({"document": doc, "summary": summary})
    return rows


def translation_pair(entity: Entity, key: str, rng: random.Random, mode: str) -> tuple[str, str]:
    en, fr = rng.choice(FACTS[entity.kind][key].pairs)
    return (
        capitalize(en.format_map(en_values(entity, mode))),
        capitalize(fr.format_map(fr_values(entity, mode))),
    )


def translation_candidates(entity: Entity, rng: random.Random) -> list[tuple[str, str]]:
    """One pair per fact, by name, plus one two-sentence pair where the second uses a pronoun."""
    keys = [k for k in available(entity) if FACTS[entity.kind][k].pairs]
    pairs = [translation_pair(entity, k, rng, "name") for k in keys]
    chained = [
        k
        for k in keys
        if any(
            subject_first(en) and fr.startswith("{fs} ") for en, fr in FACTS[entity.kind][k].pairs
        )
    ]
    if len(chained) >= 2:
        first, second = rng.sample(chained, 2)
        if second not in OVERLAPS.get(first, ()):
            en1, fr1 = translation_pair(entity, first, rng, "name")
            pronoun_pairs = [
                (en, fr)
                for en, fr in FACTS[entity.kind][second].pairs
                if subject_first(en) and fr.startswith("{fs} ")
            ]
            en2, fr2 = rng.choice(pronoun_pairs)
            en2 = capitalize(en2.format_map(en_values(entity, "pron")))
            fr2 = capitalize(fr2.format_map(fr_values(entity, "pron")))
            pairs.append((f"{en1} {en2}", f"{fr1} {fr2}"))
    return pairs


def renderable(entity: Entity) -> set[str]:
    """Every English sentence a translation pair about this entity could be."""
    return {
        capitalize(en.format_map(en_values(entity, "name")))
        for key in available(entity)
        for en, _ in FACTS[entity.kind][key].pairs
    }


def translation(world: World, split: str, rng: random.Random) -> list[dict[str, dict[str, str]]]:
    """A fact linking two entities can be said from either side; if they sit in different
    splits the same sentence would land in both, so whatever another split could say is out."""
    foreign = set().union(*(renderable(e) for e in world.all() if e.split != split))
    candidates = [p for e in entities_in(world, split, rng) for p in translation_candidates(e, rng)]
    rng.shuffle(candidates)
    rows, seen = [], set(foreign)
    for en, fr in candidates:
        if en not in seen:
            seen.add(en)
            rows.append({"translation": {"en": en, "fr": fr}})
        if len(rows) == TASK_SIZES["translation"][split]:
            break
    return rows


TASKS: dict[str, Callable[[World, str, random.Random], list]] = {
    "qa": qa,
    "summarization": summarization,
    "translation": translation,
}

# --------------------------------------------------------------------------------------
# Output.
# --------------------------------------------------------------------------------------


def jsonl(rows: Iterable[Mapping[str, object]]) -> bytes:
    lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return "".join(lines).encode("utf-8")


def write(path: Path, data: bytes) -> None:
    """Bytes, not text mode, so newlines are '\\n' on every platform."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def readme(files: list[tuple[str, int, int]], seed: int) -> bytes:
    total = sum(size for _, _, size in files)
    table = "\n".join(
        f"| `{name}` | {rows} | {size / 1024:.0f} KiB |" for name, rows, size in files
    )
    text = README_TEMPLATE.format(table=table, total=total / 1024 / 1024, seed=seed)
    return text.encode("utf-8")


README_TEMPLATE = """\
# Embedded data

Everything in this folder except `generate.py` is written by `generate.py`, a stdlib-only
script: edit the script, never the files, and regenerate with

    python data/generate.py            # --out DIR to write elsewhere, --seed N (default 0)

The same seed always gives byte-identical files (`tests/test_embedded_data.py` checks this).
This copy was made with seed {seed}.

## The world

A synthetic world of fictional people, towns, rivers, mountains, companies, schools, dishes
and animals, all named from invented syllables and linked to each other (a person is born in
a town, works for a company headquartered in another town, a river rises on a mountain...).
Every file below is rendered from these same facts, so a model pretrained on the corpus has
met the names, vocabulary and sentence patterns of every downstream task. The corpus covers
the whole world; the task splits are disjoint by entity (no entity that is the subject of a
validation or test row is the subject of a train row).

## Files

| file | rows | size |
|---|---|---|
{table}

Total: {total:.2f} MiB.

- `pretrain/corpus.jsonl`: `{{"text": str}}`, one document of 3-8 sentences about one entity
  and the things it links to, written from many paraphrase templates. No duplicates.
- `tasks/qa/*.jsonl`: SQuAD layout, `{{"id", "title", "context", "question",
  "answers": {{"text": [str], "answer_start": [int]}}}}`. The context is 2-5 sentences about
  `title`; `context[answer_start:answer_start + len(text)] == text` for every answer.
- `tasks/summarization/*.jsonl`: `{{"document": str, "summary": str}}`, a 5-10 sentence
  paragraph and one sentence stating its two or three main facts.
- `tasks/translation/*.jsonl`: `{{"translation": {{"en": str, "fr": str}}}}`, one or two
  fact sentences rendered from hand-written English and French templates; names and numbers
  are the same in both languages.

Load a task with the `datasets` JSON builder, e.g.

    load_dataset("json", data_files={{s: f"data/tasks/qa/{{s}}.jsonl"
                                     for s in ("train", "validation", "test")}})
"""


def generate(out: Path, seed: int = 0) -> list[tuple[str, int, int]]:
    """Write every file under `out`; returns (relative path, rows, bytes) for each."""
    world = build_world(random.Random(seed))
    outputs: dict[str, list] = {
        "pretrain/corpus.jsonl": corpus(world, random.Random(f"{seed}:corpus"))
    }
    for task, make in TASKS.items():
        for split in SPLITS:
            rows = make(world, split, random.Random(f"{seed}:{task}:{split}"))
            outputs[f"tasks/{task}/{split}.jsonl"] = rows
    files = []
    for name, rows in outputs.items():
        data = jsonl(rows)
        write(out / name, data)
        files.append((name, len(rows), len(data)))
    write(out / "README.md", readme(files, seed))
    return files


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name, rows, size in generate(args.out, args.seed):
        print(f"{name:36s} {rows:6d} rows {size / 1024:8.0f} KiB")


if __name__ == "__main__":
    main()
