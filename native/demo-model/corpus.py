"""Synthetic training corpus: templated English sentences over several relation families.

Everything here is deterministic given the seed (random.Random(seed), lists kept in a
fixed order, never iterating over sets or dicts whose order depends on hashing).

Families
  city_state   one hop: city -> state                ("Dallas is a city in Texas")
  state_capital one hop: state -> capital            ("The capital of Texas is Austin")
  two_hop      city -> state -> capital              ("The capital of the state containing Dallas is Austin")
  country      country -> language / capital          ("People in France speak French")
  antonym      word -> opposite                        ("The opposite of hot is cold")
  plural       noun -> plural                          ("The plural of mouse is mice")
  addition     a + b for single digits, digits & words ("3 + 4 = 7", "three plus four equals seven")
  color        object -> color                         ("The color of the sky is blue")

Each example is (text, prompt, answer, family, split): `prompt` is `text` up to the last
word, `answer` is that last word (its first token is what the model must predict after
the prompt). Splits: "train", "heldout_phrasing" (two-hop templates never trained on),
"heldout_city" (two-hop sentences of cities whose two-hop sentences were all withheld; the
cities' one-hop facts stay in training), "heldout" (a few sentences of the other families).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# state, capital, cities (the capital is never among the cities; every name is used once)
STATES: list[tuple[str, str, list[str]]] = [
    ("Alabama", "Montgomery", ["Birmingham", "Huntsville", "Mobile", "Tuscaloosa"]),
    ("Alaska", "Juneau", ["Anchorage", "Fairbanks", "Sitka", "Ketchikan"]),
    ("Arizona", "Phoenix", ["Tucson", "Mesa", "Flagstaff", "Scottsdale", "Tempe"]),
    ("Arkansas", "Little Rock", ["Fayetteville", "Fort Smith", "Jonesboro", "Springdale"]),
    ("California", "Sacramento", ["Los Angeles", "San Diego", "San Francisco", "Fresno", "Oakland"]),
    ("Colorado", "Denver", ["Boulder", "Aurora", "Pueblo", "Fort Collins"]),
    ("Connecticut", "Hartford", ["Bridgeport", "Stamford", "New Haven", "Waterbury"]),
    ("Delaware", "Dover", ["Wilmington", "Smyrna", "Lewes"]),
    ("Florida", "Tallahassee", ["Miami", "Orlando", "Tampa", "Jacksonville", "Gainesville"]),
    ("Georgia", "Atlanta", ["Savannah", "Macon", "Valdosta", "Marietta"]),
    ("Hawaii", "Honolulu", ["Hilo", "Kailua", "Lahaina"]),
    ("Idaho", "Boise", ["Pocatello", "Nampa", "Twin Falls"]),
    ("Illinois", "Springfield", ["Chicago", "Peoria", "Rockford", "Naperville", "Joliet"]),
    ("Indiana", "Indianapolis", ["Bloomington", "Evansville", "South Bend", "Fort Wayne", "Gary"]),
    ("Iowa", "Des Moines", ["Cedar Rapids", "Davenport", "Sioux City", "Dubuque", "Ames"]),
    ("Kansas", "Topeka", ["Wichita", "Lawrence", "Salina", "Olathe"]),
    ("Kentucky", "Frankfort", ["Louisville", "Lexington", "Bowling Green", "Paducah"]),
    ("Louisiana", "Baton Rouge", ["New Orleans", "Shreveport", "Lafayette", "Lake Charles"]),
    ("Maine", "Augusta", ["Bangor", "Lewiston", "Biddeford"]),
    ("Maryland", "Annapolis", ["Baltimore", "Frederick", "Rockville", "Hagerstown"]),
    ("Massachusetts", "Boston", ["Worcester", "Cambridge", "Lowell", "Plymouth", "Quincy"]),
    ("Michigan", "Lansing", ["Detroit", "Grand Rapids", "Flint", "Ann Arbor", "Kalamazoo"]),
    ("Minnesota", "Saint Paul", ["Minneapolis", "Duluth", "Mankato", "Bemidji"]),
    ("Mississippi", "Jackson", ["Gulfport", "Biloxi", "Hattiesburg", "Tupelo"]),
    ("Missouri", "Jefferson City", ["Saint Louis", "Branson", "Joplin", "Sedalia"]),
    ("Montana", "Helena", ["Billings", "Missoula", "Bozeman", "Butte"]),
    ("Nebraska", "Lincoln", ["Omaha", "Kearney", "Grand Island"]),
    ("Nevada", "Carson City", ["Las Vegas", "Reno", "Henderson", "Elko"]),
    ("New Hampshire", "Concord", ["Manchester", "Nashua", "Portsmouth", "Keene"]),
    ("New Jersey", "Trenton", ["Newark", "Camden", "Hoboken", "Princeton"]),
    ("New Mexico", "Santa Fe", ["Albuquerque", "Las Cruces", "Roswell", "Taos"]),
    ("New York", "Albany", ["Buffalo", "Rochester", "Syracuse", "Yonkers", "Ithaca"]),
    ("North Carolina", "Raleigh", ["Charlotte", "Durham", "Greensboro", "Asheville"]),
    ("North Dakota", "Bismarck", ["Fargo", "Minot", "Grand Forks"]),
    ("Ohio", "Columbus", ["Cleveland", "Cincinnati", "Toledo", "Akron", "Dayton"]),
    ("Oklahoma", "Oklahoma City", ["Tulsa", "Norman", "Lawton", "Stillwater"]),
    ("Oregon", "Salem", ["Portland", "Eugene", "Medford", "Bend"]),
    ("Pennsylvania", "Harrisburg", ["Philadelphia", "Pittsburgh", "Allentown", "Erie", "Scranton"]),
    ("Rhode Island", "Providence", ["Newport", "Warwick", "Cranston", "Pawtucket"]),
    ("South Carolina", "Columbia", ["Greenville", "Myrtle Beach", "Spartanburg", "Rock Hill"]),
    ("South Dakota", "Pierre", ["Sioux Falls", "Rapid City", "Aberdeen"]),
    ("Tennessee", "Nashville", ["Memphis", "Knoxville", "Chattanooga", "Clarksville"]),
    ("Texas", "Austin", ["Dallas", "Houston", "San Antonio", "El Paso", "Fort Worth", "Lubbock"]),
    ("Utah", "Salt Lake City", ["Provo", "Ogden", "Moab", "Orem"]),
    ("Vermont", "Montpelier", ["Burlington", "Rutland", "Brattleboro"]),
    ("Virginia", "Richmond", ["Norfolk", "Roanoke", "Arlington", "Charlottesville"]),
    ("Washington", "Olympia", ["Seattle", "Spokane", "Tacoma", "Yakima"]),
    ("West Virginia", "Charleston", ["Huntington", "Morgantown", "Wheeling"]),
    ("Wisconsin", "Madison", ["Milwaukee", "Green Bay", "Kenosha", "Racine"]),
    ("Wyoming", "Cheyenne", ["Casper", "Laramie", "Gillette", "Sheridan"]),
]

# country, language, capital
COUNTRIES: list[tuple[str, str, str]] = [
    ("France", "French", "Paris"), ("Germany", "German", "Berlin"), ("Spain", "Spanish", "Madrid"),
    ("Italy", "Italian", "Rome"), ("Portugal", "Portuguese", "Lisbon"), ("Brazil", "Portuguese", "Brasilia"),
    ("Japan", "Japanese", "Tokyo"), ("China", "Chinese", "Beijing"), ("Russia", "Russian", "Moscow"),
    ("Greece", "Greek", "Athens"), ("Turkey", "Turkish", "Ankara"), ("Poland", "Polish", "Warsaw"),
    ("Sweden", "Swedish", "Stockholm"), ("Norway", "Norwegian", "Oslo"), ("Finland", "Finnish", "Helsinki"),
    ("Denmark", "Danish", "Copenhagen"), ("Netherlands", "Dutch", "Amsterdam"), ("Egypt", "Arabic", "Cairo"),
    ("Korea", "Korean", "Seoul"), ("Vietnam", "Vietnamese", "Hanoi"), ("Thailand", "Thai", "Bangkok"),
    ("Iran", "Persian", "Tehran"), ("Israel", "Hebrew", "Jerusalem"), ("Hungary", "Hungarian", "Budapest"),
    ("Argentina", "Spanish", "Buenos Aires"), ("Peru", "Spanish", "Lima"), ("Chile", "Spanish", "Santiago"),
    ("Colombia", "Spanish", "Bogota"), ("Austria", "German", "Vienna"), ("Ireland", "English", "Dublin"),
    ("Australia", "English", "Canberra"), ("Kenya", "Swahili", "Nairobi"), ("India", "Hindi", "New Delhi"),
    ("Ukraine", "Ukrainian", "Kyiv"), ("Romania", "Romanian", "Bucharest"), ("Indonesia", "Indonesian", "Jakarta"),
    ("Pakistan", "Urdu", "Islamabad"), ("Canada", "English", "Ottawa"), ("Mexico", "Spanish", "Mexico City"),
    ("Cuba", "Spanish", "Havana"),
]

ANTONYMS: list[tuple[str, str]] = [
    ("hot", "cold"), ("big", "small"), ("tall", "short"), ("fast", "slow"), ("happy", "sad"),
    ("light", "dark"), ("up", "down"), ("open", "closed"), ("early", "late"), ("rich", "poor"),
    ("young", "old"), ("hard", "soft"), ("wet", "dry"), ("full", "empty"), ("strong", "weak"),
    ("loud", "quiet"), ("high", "low"), ("thick", "thin"), ("clean", "dirty"), ("good", "bad"),
    ("true", "false"), ("win", "lose"), ("buy", "sell"), ("push", "pull"), ("left", "right"),
    ("north", "south"), ("east", "west"), ("day", "night"), ("love", "hate"), ("begin", "end"),
    ("inside", "outside"), ("before", "after"), ("above", "below"), ("black", "white"), ("alive", "dead"),
    ("cheap", "expensive"), ("deep", "shallow"), ("wide", "narrow"), ("sweet", "sour"), ("friend", "enemy"),
    ("question", "answer"), ("arrive", "leave"), ("always", "never"), ("everything", "nothing"),
    ("more", "less"), ("first", "last"), ("smooth", "rough"), ("easy", "difficult"), ("laugh", "cry"),
    ("sharp", "dull"), ("safe", "dangerous"), ("brave", "afraid"), ("near", "far"), ("give", "take"),
]

PLURALS: list[tuple[str, str]] = [
    ("cat", "cats"), ("dog", "dogs"), ("mouse", "mice"), ("child", "children"), ("man", "men"),
    ("woman", "women"), ("foot", "feet"), ("tooth", "teeth"), ("goose", "geese"), ("box", "boxes"),
    ("city", "cities"), ("baby", "babies"), ("leaf", "leaves"), ("knife", "knives"), ("wolf", "wolves"),
    ("person", "people"), ("sheep", "sheep"), ("fish", "fish"), ("bus", "buses"), ("glass", "glasses"),
    ("church", "churches"), ("party", "parties"), ("house", "houses"), ("tree", "trees"), ("book", "books"),
    ("car", "cars"), ("apple", "apples"), ("potato", "potatoes"), ("tomato", "tomatoes"), ("hero", "heroes"),
    ("ox", "oxen"), ("cactus", "cacti"), ("crisis", "crises"), ("story", "stories"), ("bird", "birds"),
    ("horse", "horses"), ("key", "keys"), ("toy", "toys"), ("wife", "wives"), ("half", "halves"),
    ("life", "lives"), ("deer", "deer"), ("shelf", "shelves"), ("dish", "dishes"), ("watch", "watches"),
    ("fox", "foxes"), ("lady", "ladies"), ("penny", "pennies"), ("river", "rivers"), ("song", "songs"),
]

COLORS: list[tuple[str, str]] = [
    ("the sky", "blue"), ("grass", "green"), ("snow", "white"), ("coal", "black"), ("a banana", "yellow"),
    ("a ripe tomato", "red"), ("a lemon", "yellow"), ("blood", "red"), ("a carrot", "orange"),
    ("chocolate", "brown"), ("milk", "white"), ("the ocean", "blue"), ("a fresh leaf", "green"),
    ("a cherry", "red"), ("a plum", "purple"), ("a pumpkin", "orange"), ("the sun", "yellow"),
    ("a crow", "black"), ("an emerald", "green"), ("a ruby", "red"), ("a sapphire", "blue"),
    ("ash", "gray"), ("a lime", "green"), ("coffee", "brown"), ("a flamingo", "pink"), ("a violet", "purple"),
]

NUM_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
             "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen"]

# ---------------------------------------------------------------------------------------
# templates: the answer is always the final word(s), filled by {a}
CITY_STATE_T = [
    "{c} is a city in {a}",
    "{c} is located in {a}",
    "The city of {c} is in {a}",
    "The state containing {c} is {a}",
    "The state that contains {c} is {a}",
    "I live in {c}, {a}",
    "She flew to {c}, {a}",
    "People in {c} live in the state of {a}",
    "The city of {c} lies in the state of {a}",
    "{c} belongs to the state of {a}",
    "We drove to {c} in {a}",
]
STATE_CITY_T = [  # reverse direction, answer is a city
    "One city in {s} is {a}",
    "A large city in the state of {s} is {a}",
]
STATE_CAPITAL_T = [
    "The capital of {s} is {a}",
    "The capital city of {s} is {a}",
    "The state capital of {s} is {a}",
    "{s} has its capital in {a}",
    "The capital of the state of {s} is {a}",
    "The government of {s} meets in {a}",
    "The capital of state {s} is {a}",
]
CAPITAL_STATE_T = [
    "{cap} is the capital of {a}",
    "The city of {cap} is the capital of {a}",
]
TWO_HOP_TRAIN_T = [
    "The capital of the state containing {c} is {a}",
    "The capital of state containing {c} is {a}",
    "The capital of the state where {c} is located is {a}",
    "{c} is in a state whose capital is {a}",
    "The capital city of the state containing {c} is {a}",
    "If you live in {c}, your state capital is {a}",
    "The state that contains {c} has its capital in {a}",
    "The capital of the state with {c} is {a}",
    "From {c}, the state capital is {a}",
    "The state capital for the city of {c} is {a}",
]
TWO_HOP_HELDOUT_T = [
    "The capital of the state that contains {c} is {a}",
    "The capital city of state containing {c} is {a}",
    "{c} is located in a state whose capital is {a}",
    "The state containing {c} has its capital in {a}",
]
COUNTRY_LANG_T = [
    "People in {x} speak {a}",
    "The language of {x} is {a}",
    "In {x}, most people speak {a}",
    "The official language of {x} is {a}",
]
COUNTRY_CAPITAL_T = [
    "The capital of {x} is {a}",
    "The capital city of {x} is {a}",
    "The government of {x} meets in {a}",
]
ANTONYM_T = [
    "The opposite of {w} is {a}",
    "The antonym of {w} is {a}",
    "The word {w} means the opposite of {a}",
    "Not {w} but {a}",
]
PLURAL_T = [
    "The plural of {w} is {a}",
    "One {w}, two {a}",
    "I saw one {w} and then many {a}",
    "A single {w} but several {a}",
]
ADD_T = [
    "{x} + {y} = {a}",
    "{X} plus {Y} equals {a}",
    "What is {x} plus {y}? The answer is {a}",
]
COLOR_T = [
    "The color of {o} is {a}",
    "The usual color of {o} is {a}",
    "What color is {o}? It is {a}",
]


@dataclass(frozen=True)
class Example:
    text: str
    prompt: str
    answer: str
    family: str
    split: str
    meta: str = ""  # e.g. the city for two-hop examples


def _ex(template: str, answer: str, family: str, split: str, meta: str = "", **kw: str) -> Example:
    prompt = template.replace("{a}", "\x00").format(**kw).split("\x00")[0].rstrip()
    text = f"{prompt} {answer}"
    return Example(text=text, prompt=prompt, answer=answer, family=family, split=split, meta=meta)


def heldout_cities(seed: int) -> list[str]:
    """Cities whose two-hop sentences are withheld: one city from every other state (by a
    seeded shuffle), never Dallas (the demo prompt)."""
    rng = random.Random(seed * 1000 + 17)
    order = list(range(len(STATES)))
    rng.shuffle(order)
    chosen = sorted(order[: len(STATES) // 2])
    out = []
    for i in chosen:
        cities = [c for c in STATES[i][2] if c != "Dallas"]
        out.append(cities[rng.randrange(len(cities))])
    return out


def build_examples(seed: int) -> list[Example]:
    """All distinct sentences with their split labels, in a fixed order."""
    rng = random.Random(seed * 1000 + 29)
    held_city = set(heldout_cities(seed))
    ex: list[Example] = []
    for state, cap, cities in STATES:
        for c in cities:
            for t in CITY_STATE_T:
                ex.append(_ex(t, state, "city_state", "train", meta=c, c=c))
            for t in TWO_HOP_TRAIN_T:
                split = "heldout_city" if c in held_city else "train"
                ex.append(_ex(t, cap, "two_hop", split, meta=c, c=c))
            for t in TWO_HOP_HELDOUT_T:
                split = "heldout_city_phrasing" if c in held_city else "heldout_phrasing"
                ex.append(_ex(t, cap, "two_hop", split, meta=c, c=c))
            for t in STATE_CITY_T:
                ex.append(_ex(t, c, "state_city", "train", meta=c, s=state))
        for t in STATE_CAPITAL_T:
            ex.append(_ex(t, cap, "state_capital", "train", meta=state, s=state))
        for t in CAPITAL_STATE_T:
            ex.append(_ex(t, state, "capital_state", "train", meta=state, cap=cap))
    others: list[Example] = []
    for country, lang, cap in COUNTRIES:
        for t in COUNTRY_LANG_T:
            others.append(_ex(t, lang, "country_language", "train", meta=country, x=country))
        for t in COUNTRY_CAPITAL_T:
            others.append(_ex(t, cap, "country_capital", "train", meta=country, x=country))
    for a, b in ANTONYMS:
        for w, o in ((a, b), (b, a)):
            for t in ANTONYM_T:
                others.append(_ex(t, o, "antonym", "train", meta=w, w=w))
    for s, p in PLURALS:
        for t in PLURAL_T:
            others.append(_ex(t, p, "plural", "train", meta=s, w=s))
    for x in range(10):
        for y in range(10):
            z = x + y
            others.append(_ex(ADD_T[0], str(z), "addition", "train", x=str(x), y=str(y)))
            others.append(_ex(ADD_T[1], NUM_WORDS[z], "addition", "train",
                              X=NUM_WORDS[x].capitalize(), Y=NUM_WORDS[y]))
            others.append(_ex(ADD_T[2], str(z), "addition", "train", x=str(x), y=str(y)))
    for o, col in COLORS:
        for t in COLOR_T:
            others.append(_ex(t, col, "color", "train", meta=o, o=o))
    # hold out ~4% of the other families' sentences (their facts stay known through
    # other phrasings) as held-out prompts for replacement-model agreement
    for e in others:
        if rng.random() < 0.04:
            e = Example(e.text, e.prompt, e.answer, e.family, "heldout", e.meta)
        ex.append(e)
    return ex


# sampling weight of each family in the training stream (per sentence of that family)
FAMILY_WEIGHT = {
    "two_hop": 0.30, "city_state": 0.22, "state_city": 0.03, "state_capital": 0.10,
    "capital_state": 0.03, "country_language": 0.07, "country_capital": 0.05,
    "antonym": 0.07, "plural": 0.05, "addition": 0.05, "color": 0.03,
}


def training_pool(examples: list[Example]) -> tuple[list[str], list[float]]:
    """Training sentences and per-sentence sampling probabilities."""
    train = [e for e in examples if e.split == "train"]
    counts: dict[str, int] = {}
    for e in train:
        counts[e.family] = counts.get(e.family, 0) + 1
    texts = [e.text + "." for e in train]
    probs = [FAMILY_WEIGHT[e.family] / counts[e.family] for e in train]
    s = sum(probs)
    return texts, [p / s for p in probs]
