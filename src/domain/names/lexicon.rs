//! Word lists, per language (German, English, Hindi in Devanagari and Latin incl. Hinglish,
//! Hebrew in Hebrew script and transliterated). All entries are lowercase and without
//! punctuation: they are compared with normalized tokens.
//!
//! A name is never made of these words: greetings, filler and interjections, pronouns,
//! kinship and role words, business words (and German business compounds, by suffix),
//! ordinary nouns that callers put where a name could stand ("Notfall", "Termin").

/// Titles and honorifics: stripped from names, kept as a gender/politeness hint.
#[rustfmt::skip]
pub(crate) const TITLES: &[&str] = &[
    "herr", "herrn", "frau", "dr", "prof", "mr", "mrs", "ms", "miss", "mister", "shri", "sri",
    "shrimati", "smt", "kumari", "sushri", "ji", "श्री", "श्रीमती", "सुश्री", "कुमारी", "जी", "מר",
    "גברת", "גב", "ד\"ר", "sir", "madam", "dame", "fräulein", "mx", "doktor", "professor",
    "dokter", "doctor", "डॉ", "डॉक्टर", "הרב", "rabbi",
];

/// Titles that say the person is a woman / a man.
#[rustfmt::skip]
pub(crate) const FEMALE_TITLES: &[&str] = &[
    "frau", "mrs", "ms", "miss", "shrimati", "smt", "kumari", "sushri", "श्रीमती", "सुश्री", "कुमारी",
    "גברת", "גב", "madam", "dame", "fräulein",
];
#[rustfmt::skip]
pub(crate) const MALE_TITLES: &[&str] = &["herr", "herrn", "mr", "mister", "shri", "sri", "श्री", "מר", "sir"];

/// Honorifics that follow the name ("Sharma ji", "Sharma-ji", "शर्मा जी").
pub(crate) const TRAILING_HONORIFICS: &[&str] = &["ji", "जी", "sahab", "saheb", "साहब", "sahib"];

/// Greeting phrases (whole utterance) that must never become a name.
#[rustfmt::skip]
pub(crate) const GREETING_PHRASES: &[&str] = &[
    "guten tag", "guten morgen", "guten abend", "schönen guten tag", "grüß gott", "grüss gott",
    "gruess gott", "good morning", "good afternoon", "good evening", "yes speaking", "thank you",
    "haan ji", "moin moin", "boker tov", "erev tov", "boker or", "laila tov", "shavua tov",
    "shabbat shalom", "sat sri akal", "ram ram", "jai shri krishna", "cheers ta", "ta ra",
    "schönen tag", "einen schönen", "ji haan", "haan bhai", "all right", "bis dann",
    "auf wiederhören", "auf wiedersehen", "bye bye", "see you", "ok bye", "mazal tov",
    "בוקר טוב", "ערב טוב", "לילה טוב", "שבוע טוב", "שבת שלום", "צהריים טובים",
];

/// A name never starts with one of these.
#[rustfmt::skip]
pub(crate) const GREETING_WORDS: &[&str] = &[
    "hallo", "hello", "hullo", "hi", "hey", "hiya", "servus", "moin", "tach", "guten", "good",
    "grüß", "grüss", "gruess", "gruß", "namaste", "namaskar", "namaskaar", "pranam", "नमस्ते",
    "नमस्कार", "प्रणाम", "shalom", "שלום", "הלו", "היי", "schönen", "schoenen", "wunderschönen",
    "einen", "boker", "erev", "ahlan", "ahla", "בוקר", "ערב", "צהריים", "morning", "afternoon",
    "evening", "howdy", "aloha", "salut", "ciao", "tschau", "tschüss", "tschüs", "adieu",
    "wiederhören", "wiedersehen", "lehitraot", "להתראות", "bye", "goodbye", "cheerio", "ta",
    "cheers", "salaam", "salam", "adaab", "आदाब", "सलाम", "hallöchen", "grüezi",
];

/// Words that are filler or interjections on their own: never (part of) a name.
#[rustfmt::skip]
pub(crate) const FILLER: &[&str] = &[
    // English
    "yes", "yeah", "yep", "yup", "aye", "no", "nope", "nah", "ok", "okay", "sure", "right",
    "fine", "well", "so", "um", "umm", "uh", "uhm", "er", "erm", "ah", "oh", "ooh", "eh", "hmm",
    "mm", "mhm", "speaking", "calling", "here", "sorry", "thanks", "thank", "you", "please",
    "pardon", "what", "who", "perfect", "great", "alright", "exactly", "correct", "bye",
    "goodbye", "morning", "afternoon", "evening", "cheers", "ta", "lovely", "brilliant", "mate",
    "love", "darling", "pet", "hun", "hon", "sweetheart", "guv", "madam", "maam", "sir",
    "absolutely", "definitely", "indeed", "wonderful", "super", "cool", "fab", "smashing",
    "blimey", "gosh", "wow", "anyway", "actually", "basically", "like", "just", "quick",
    "quickly", "hang", "hold", "wait", "listen", "look", "excuse", "hiya", "urgent", "help",
    "emergency", "hi", "hello", "there", "again", "yourself", "bless",
    // German
    "ja", "jaa", "jo", "jap", "jup", "nein", "nee", "ne", "nö", "genau", "richtig", "bitte",
    "danke", "dankeschön", "dankesehr", "moment", "momentchen", "achso", "ach", "aha", "oh", "na",
    "naja", "nun", "doch", "oje", "ojemine", "hm", "äh", "ähm", "öhm", "eh", "also", "gut",
    "prima", "super", "klar", "alles", "gerne", "gern", "stimmt", "hier", "dran", "am",
    "apparat", "entschuldigung", "entschuldigen", "tag", "morgen", "abend", "gott", "wie", "was",
    "wer", "tschüss", "wiederhören", "jawohl", "jawoll", "freilich", "natürlich",
    "selbstverständlich", "bestimmt", "vielleicht", "leider", "übrigens", "sowieso", "eben",
    "halt", "mal", "schön", "schönen", "schoenen", "wunderbar", "toll", "herrlich", "perfekt",
    "okay", "servus", "grüß", "gruß", "tschau", "schnell", "kurz", "kurze", "dringend", "eilig",
    "sofort", "gleich", "heute", "gestern", "jetzt", "nochmal", "einmal", "wieder", "hallöchen",
    "mahlzeit", "ebenfalls", "gleichfalls", "herzlich", "herzlichen", "vielen", "dank", "einen",
    "schönes", "wochenende", "feierabend", "ordnung", "passt", "sicher", "logisch", "vollkommen",
    "absolut", "sozusagen", "quasi", "eigentlich", "irgendwie", "hilfe", "notfall", "notruf",
    // Hindi (romanized, Hinglish)
    "haan", "ha", "haa", "haanji", "hanji", "ji", "jee", "accha", "acha", "achha", "achchha",
    "theek", "thik", "thick", "hai", "hain", "hoon", "hu", "hun", "nahi", "nahin", "na", "dhanyavaad",
    "dhanyavad", "dhanyawad", "shukriya", "boliye", "boliyega", "bolo", "suniye", "suno",
    "bataiye", "batao", "dekhiye", "dekho", "kahiye", "kaho", "arre", "arey", "are", "yaar",
    "chalo", "chaliye", "matlab", "bas", "bhai", "bhaiya", "bhaisahab", "behenji", "didi",
    "madam", "sirji", "zaroor", "jaroor", "bilkul", "sahi", "pakka", "kya", "kaun", "kab",
    "kahan", "kaise", "kyun", "kyon", "woh", "wo", "yeh", "ye", "ek", "minute", "second",
    "namaste", "namaskar", "pranam", "kripya", "jaldi", "abhi", "aaj", "kal", "haanji", "ok",
    "हाँ", "हां", "हाँजी", "जी", "अच्छा", "ठीक", "है", "हैं", "नहीं", "धन्यवाद", "शुक्रिया", "बोलिए",
    "बोलिये", "सुनिए", "सुनिये", "बताइए", "बताइये", "देखिए", "देखिये", "अरे", "यार", "चलो", "बस",
    "भाई", "भैया", "दीदी", "ज़रूर", "जरूर", "बिल्कुल", "सही", "पक्का", "क्या", "कौन", "कब", "कहाँ",
    "कैसे", "क्यों", "वो", "ये", "एक", "मिनट", "नमस्ते", "नमस्कार", "प्रणाम", "कृपया", "जल्दी", "अभी",
    "आज", "कल", "हैलो", "हेलो", "हलो", "सर", "मैडम", "khud", "khudh", "wahi", "wohi", "yahi",
    "phir", "fir", "dobara", "dubara", "sirf", "खुद", "ख़ुद", "वही", "यही", "फिर", "दोबारा", "सिर्फ",
    // Hebrew (script and transliterated)
    "כן", "לא", "טוב", "בסדר", "תודה", "רבה", "סליחה", "רגע", "הלו", "שלום", "בוקר", "ערב", "יום",
    "צהריים", "אחלה", "יופי", "סבבה", "מצוין", "מעולה", "נהדר", "בבקשה", "אוקיי", "אוקי", "יאללה",
    "אז", "אה", "אמ", "אממ", "נו", "וואו", "ואו", "בטח", "ברור", "נכון", "בדיוק", "טוב", "היי",
    "ביי", "להתראות", "חירום", "דחוף", "עזרה", "שנייה", "שניה", "אחד", "אחת", "מה", "מי", "איך",
    "ken", "lo", "tov", "beseder", "toda", "todah", "raba", "rabah", "slicha", "sliha", "rega",
    "shalom", "boker", "erev", "achla", "ahla", "yofi", "sababa", "metsuyan", "metzuyan",
    "mazal", "bevakasha", "yalla", "nu", "betach", "barur", "nachon", "bediyuk", "az", "ma",
    "mi", "eich", "ech", "shniya", "ahlan", "lehitraot", "yom", "layla", "laila", "shavua",
    "ani", "ata", "at", "hu", "hi", "anachnu", "sheli", "shelcha", "shelach",
];

/// Names that are also filler words in another language: allowed as a first name when a
/// surname follows ("Ken Barlow", "Will Turner"), never alone.
#[rustfmt::skip]
pub(crate) const NAME_LIKE_FILLER: &[&str] = &[
    "ken", "will", "mark", "frank", "grace", "hope", "joy", "rose", "dawn", "sunny", "bill",
    "are", "lo", "ma", "mi", "jo", "bas", "rich", "ray", "art", "guy", "sky",
];

/// Pronouns: "Ich", "Me" or "אני" are never the caller's name.
#[rustfmt::skip]
pub(crate) const PRONOUNS: &[&str] = &[
    "i", "me", "my", "mine", "myself", "you", "he", "she", "it", "we", "they", "him", "her", "us",
    "them", "his", "hers", "their", "our", "your", "ich", "mich", "mir", "du", "sie", "er", "es",
    "wir", "ihr", "ihnen", "main", "mera", "meri", "mere", "mujhe", "aap", "aapka", "aapki",
    "hum", "tum", "woh", "मैं", "मेरा", "मेरी", "मेरे", "मुझे", "आप", "आपका", "आपकी", "हम", "तुम",
    "אני", "אתה", "את", "הוא", "היא", "אנחנו", "הם", "הן", "שלי", "שלך", "שלו", "שלה", "mein",
    "meine", "meinen", "meiner", "meinem", "sein", "seine", "seiner", "seinem", "seinen",
    "ihre", "ihrer", "ihrem", "ihren", "unser", "unsere", "ani", "ana",
];

/// Kinship and role words: a name next to one of these is (usually) someone else's.
#[rustfmt::skip]
pub(crate) const KINSHIP: &[&str] = &[
    // English
    "daughter", "son", "wife", "husband", "mother", "mum", "mom", "mummy", "mommy", "father",
    "dad", "daddy", "brother", "sister", "grandson", "granddaughter", "grandmother", "grandma",
    "granny", "gran", "nan", "nana", "grandfather", "grandad", "granddad", "grandpa", "aunt",
    "auntie", "aunty", "uncle", "nephew", "niece", "cousin", "carer", "caregiver", "neighbour",
    "neighbor", "friend", "partner", "assistant", "secretary", "pa", "colleague", "boss",
    "landlord", "landlady", "tenant", "lodger", "solicitor", "lawyer", "nurse", "guardian",
    "fiance", "fiancé", "fiancée", "girlfriend", "boyfriend", "child", "kid", "kids", "children",
    "stepson", "stepdaughter", "stepmother", "stepfather", "employer", "employee", "manager",
    "representative", "agent", "family", "relative", "niece", "in-law", "spouse", "widow",
    "executor", "attorney", "housekeeper", "cleaner", "nanny", "childminder", "flatmate",
    "roommate", "behalf",
    // German
    "tochter", "sohn", "ehefrau", "gattin", "gatte", "ehemann", "mutter", "mama", "mutti",
    "vater", "papa", "vati", "bruder", "schwester", "oma", "opa", "großmutter", "grossmutter",
    "großvater", "grossvater", "enkel", "enkelin", "tante", "onkel", "neffe", "nichte",
    "nachbar", "nachbarin", "betreuer", "betreuerin", "pfleger", "pflegerin", "pflegekraft",
    "kollege", "kollegin", "sekretärin", "sekretär", "assistent", "assistentin",
    "lebensgefährte", "lebensgefährtin", "partnerin", "freund", "freundin", "schwiegertochter",
    "schwiegersohn", "schwiegermutter", "schwiegervater", "schwager", "schwägerin", "cousine",
    "vermieter", "vermieterin", "mieter", "mieterin", "chef", "chefin", "arbeitgeber", "vormund",
    "bevollmächtigte", "bevollmächtigter", "angehörige", "angehöriger", "kind", "kinder",
    "stiefsohn", "stieftochter", "stiefvater", "stiefmutter", "hausverwaltung", "verwalter",
    "verwalterin", "auftrag", "namen",
    // Hindi (romanized)
    "beta", "beti", "patni", "pati", "biwi", "wife", "maa", "mata", "mataji", "pita", "pitaji",
    "papa", "bhai", "bhaiya", "behen", "bahen", "behan", "didi", "dada", "dadi", "nana", "nani",
    "chacha", "chachi", "mama", "mami", "bua", "bhabhi", "devar", "saas", "sasur", "damaad",
    "bahu", "naukar", "padosi", "dost", "sahayak", "bhatija", "bhatiji", "bhanja", "bhanji",
    "pota", "poti", "mausi", "mausa", "jija", "jijaji", "saala", "taraf", "liye", "pati",
    // Hindi (Devanagari)
    "बेटा", "बेटी", "पत्नी", "पति", "बीवी", "माँ", "मां", "माता", "माताजी", "पिता", "पिताजी", "पापा",
    "भाई", "भैया", "बहन", "दीदी", "दादा", "दादी", "नाना", "नानी", "चाचा", "चाची", "मामा", "मामी",
    "बुआ", "भाभी", "देवर", "सास", "ससुर", "दामाद", "बहू", "नौकर", "पड़ोसी", "पडोसी", "दोस्त",
    "सहायक", "ड्राइवर", "ड्रायवर", "मैनेजर", "भतीजा", "भतीजी", "भांजा", "भांजी", "पोता", "पोती", "मौसी", "जीजा", "तरफ़", "तरफ",
    "लिए",
    // Hebrew (with and without the article ה)
    "בת", "הבת", "בתו", "בתה", "בן", "הבן", "בנו", "בנה", "אשה", "אישה", "האישה", "אשתו",
    "בעל", "הבעל", "בעלה", "אמא", "האמא", "אמו", "אמה", "אם", "אבא", "האבא", "אביו", "אביה",
    "אח", "האח", "אחיו", "אחיה", "אחות", "האחות", "אחותו", "אחותה", "סבא", "הסבא", "סבתא",
    "הסבתא", "נכד", "הנכד", "נכדה", "הנכדה", "שכן", "השכן", "שכנה", "השכנה", "מטפלת",
    "המטפלת", "מטפל", "המטפל", "חבר", "החבר", "חברה", "החברה", "עוזר", "העוזר", "עוזרת",
    "העוזרת", "מזכירה", "המזכירה", "בשם", "בשביל", "עבור", "מטעם", "גיס", "גיסה", "חותן",
    "חמות", "כלה", "חתן", "אפוטרופוס", "קרוב", "קרובה", "בעלי", "אשתי", "בתי", "אחי",
    "אחותי", "סבתי", "סבי", "נכדי", "נכדתי", "אמי", "הורי", "ילדי", "הבעל", "השכן",
    // Hebrew transliterated
    "isha", "ishto", "baal", "baala", "ima", "imma", "aba", "abba", "ach", "achot",
    "saba", "savta", "neched", "nechda", "shachen", "shchena", "metapelet", "chaver", "chavera",
    "beshem", "bishvil", "avur", "ha-bat", "habat", "ha-ben", "haben", "ha-isha", "haisha",
    "ha-baal", "habaal", "ha-ima", "ha-aba", "bito", "bno", "ishto",
];

/// Words that mark an organisation rather than a person.
#[rustfmt::skip]
pub(crate) const COMPANY_WORDS: &[&str] = &[
    "gmbh", "ag", "kg", "ohg", "ug", "gbr", "ek", "ltd", "llc", "llp", "inc", "corp",
    "corporation", "limited", "plc", "pvt", "private", "company", "co", "firma", "support",
    "service", "services", "kundenservice", "kundendienst", "team", "hotline", "zentrale",
    "abteilung", "department", "praxis", "kanzlei", "autohaus", "apotheke", "versicherung",
    "bank", "motors", "realty", "clinic", "klinik", "hospital", "hotel", "restaurant", "sanitär",
    "sanitaer", "store", "shop", "solutions", "group", "gruppe", "plumbing", "plumbers",
    "plumber", "heating", "electrics", "electrical", "electric", "dental", "dentist", "dentists",
    "surgery", "practice", "garage", "garages", "builders", "building", "roofing", "solicitors",
    "estates", "estate", "agents", "lettings", "cleaning", "repairs", "repair", "windows",
    "kitchens", "bathrooms", "vets", "veterinary", "pharmacy", "chemist", "opticians", "salon",
    "studio", "centre", "center", "associates", "partners", "enterprises", "traders", "trading",
    "industries", "international", "holdings", "consulting", "consultants", "logistics",
    "insurance", "finance", "properties", "property", "medical", "health", "healthcare", "care",
    "homes", "academy", "school", "institute", "university", "college", "office", "reception",
    "desk", "helpdesk", "callcenter", "heizung", "elektro", "elektrik", "technik", "bau",
    "immobilien", "reinigung", "werkstatt", "handwerk", "dach", "fenster", "zahnarzt",
    "zahnärztin", "zahnarztpraxis", "arztpraxis", "hausarzt", "tierarzt", "physiotherapie",
    "physio", "friseur", "salon", "bäckerei", "metzgerei", "schreinerei", "tischlerei",
    "malerbetrieb", "elektrobetrieb", "betrieb", "handel", "vertrieb", "verwaltung", "amt",
    "stadtwerke", "gemeinde", "verein", "stiftung", "zentrum", "institut", "labor", "kita",
    "schule", "hochschule", "universität", "anwalt", "rechtsanwalt", "notar", "steuerberater",
    "enterprises", "traders", "agency", "agencies", "associates", "infotech", "tech", "systems",
    "pharma", "diagnostics", "nursing", "home", "hospitals", "clinics", "builders",
    "constructions", "construction", "travels", "tours", "telecom", "electronics", "automobiles",
    "mart", "bazaar", "emporium", "sons", "brothers", "bros", "udyog", "sansthan", "kendra",
    "मोटर्स", "क्लिनिक", "अस्पताल", "हॉस्पिटल", "सेंटर", "कंपनी", "ट्रेडर्स", "एंटरप्राइजेज",
    "מרפאת", "מרפאה", "חברת", "חברה", "משרד", "מוסך", "בע\"מ", "בעמ", "שירות", "שירותי",
    "מרכז", "בית", "חנות", "מכון", "סוכנות", "רשת", "קליניקה", "מעבדה", "שיניים", "אינסטלציה",
    "ביטוח", "נדל\"ן", "נדלן", "עורכי", "דין", "רואי", "חשבון", "מרפאות", "mirpaat", "mirpaa",
    "chevrat", "misrad", "musach",
];

/// German compounds ending in these are businesses, places or services, not people
/// ("Zahnarztpraxis", "Heizungsservice", "Sanitärtechnik", "Müller GmbH").
#[rustfmt::skip]
pub(crate) const BUSINESS_SUFFIXES: &[&str] = &[
    "praxis", "service", "services", "technik", "gmbh", "versicherung", "werkstatt", "apotheke",
    "kanzlei", "klinik", "klinikum", "zentrum", "center", "studio", "salon", "markt", "logistik",
    "immobilien", "reinigung", "handwerk", "sanitär", "sanitaer", "heizung", "elektrik",
    "bäckerei", "metzgerei", "schreinerei", "tischlerei", "gärtnerei", "druckerei", "betrieb",
    "handel", "vertrieb", "verwaltung", "dienst", "dienste", "hotline", "zentrale", "abteilung",
    "gesellschaft", "versand", "bedarf", "shop", "haus", "bau", "team", "plumbing", "heating",
    "electrics", "solutions", "systems", "motors", "dental", "care", "clinic", "pharmacy",
    "bedachung", "schlüsseldienst", "notdienst", "pflegedienst", "hausverwaltung",
];

/// Capitalized surnames that end in a business suffix ("Neuhaus", "Hausbau") and are names.
#[rustfmt::skip]
pub(crate) const SUFFIX_SURNAMES: &[&str] = &[
    "neuhaus", "althaus", "rathaus", "hausmann", "steinhaus", "birkenhaus", "kornhaus",
    "lindenhaus", "bau", "ackerbau", "salon", "markt", "neumarkt", "center", "care", "team",
    "dienst", "handel", "hochhaus", "brauhaus", "backhaus", "waldhaus", "wasserhaus",
    "feldhaus", "hardenberg",
];

/// Ordinary words that follow an intro cue or stand where a name could ("ich bin der
/// Meinung", "I'm Customer 4711", "Notfall!", "Termin."). Occupational surnames (Koch,
/// Richter, Schreiber, Müller, Weber, Fischer, Becker) are deliberately absent.
#[rustfmt::skip]
pub(crate) const COMMON_WORDS: &[&str] = &[
    // German
    "kunde", "kundin", "patient", "patientin", "meinung", "ansicht", "termin", "termine",
    "rechnung", "frage", "fragen", "anliegen", "auftrag", "bestellung", "problem", "probleme",
    "anruf", "rückruf", "interesse", "notfall", "notfälle", "notdienst", "reparatur",
    "wasserschaden", "rohrbruch", "schaden", "unfall", "störung", "ausfall", "heizung",
    "schmerzen", "zahnschmerzen", "rezept", "überweisung", "befund", "ergebnis", "ergebnisse",
    "angebot", "kostenvoranschlag", "beschwerde", "reklamation", "lieferung", "paket",
    "vertrag", "kündigung", "versicherung", "auskunft", "info", "information", "abholung",
    "wartung", "inspektion", "besichtigung", "beratung", "sprechstunde", "arzt", "ärztin",
    "doktor", "büro", "empfang", "wohnung", "keller", "küche", "toilette", "wasser", "strom",
    "gas", "auto", "wagen", "reifen", "motor", "montag", "dienstag", "mittwoch", "donnerstag",
    "freitag", "samstag", "sonnabend", "sonntag", "januar", "februar", "märz", "april", "mai",
    "juni", "juli", "september", "oktober", "november", "dezember", "woche",
    "nachmittag", "vormittag", "mittag", "uhr", "stunde", "minute", "sekunde", "zeit",
    "nummer", "telefon", "telefonnummer", "handy", "adresse", "straße", "strasse", "name",
    "vorname", "nachname", "familienname", "mann", "ehemann", "nachbar", "sache", "ding",
    "leute", "mensch", "person", "herrschaften", "damen", "herren", "kollegen", "alle",
    "zahn", "zähne", "krone", "implantat", "brücke", "kontrolle", "prophylaxe", "röntgen",
    "bescheid", "rückmeldung", "nachricht", "mail", "email", "brief", "post", "formular",
    "unterlagen", "dokumente", "zahlung", "mahnung", "konto", "bestellnummer", "kundennummer",
    "vertragsnummer", "aktenzeichen", "preis", "kosten", "geld", "euro", "termins",
    "terminvereinbarung", "terminabsage", "absage", "verschiebung", "bestätigung", "anfrage",
    "hamburg", "berlin", "münchen", "köln", "frankfurt", "stuttgart", "düsseldorf", "dortmund",
    "essen", "leipzig", "bremen", "dresden", "hannover", "nürnberg", "bonn", "deutschland",
    // English
    "customer", "client", "patient", "invoice", "order", "appointment", "account", "bill",
    "question", "issue", "delivery", "owner", "manager", "booking", "enquiry", "inquiry",
    "complaint", "quote", "estimate", "leak", "boiler", "emergency", "problem", "repair",
    "refund", "payment", "parcel", "package", "prescription", "results", "result", "test",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january",
    "february", "march", "july", "october", "december", "today", "tomorrow",
    "yesterday", "week", "weekend", "morning", "afternoon", "evening", "number", "phone",
    "address", "street", "road", "name", "surname", "people", "everyone", "everybody",
    "somebody", "someone", "anybody", "nobody", "person", "gentleman", "lady", "ladies",
    "folks", "guys", "team", "staff", "reception", "receptionist", "doctor", "dentist",
    "engineer", "plumber", "electrician", "technician", "driver", "courier", "postman",
    "london", "bristol", "manchester", "birmingham", "leeds", "liverpool", "glasgow", "cardiff",
    "edinburgh", "england", "wales", "scotland", "britain", "uk",
    // Hindi (romanized)
    "naam", "nam", "grahak", "booking", "gaadi", "gadi", "car", "bike", "service", "servicing",
    "shikayat", "samasya", "dikkat", "pareshani", "bill", "paisa", "paise", "order", "delivery",
    "appointment", "doctor", "daktar", "dawai", "dawa", "report", "test", "number", "mobile",
    "phone", "address", "pata", "ghar", "dukaan", "dukan", "showroom", "somvar", "mangalvar",
    "budhvar", "guruvar", "shukravar", "shanivar", "ravivar", "aaj", "kal", "parso", "subah",
    "shaam", "raat", "din", "hafta", "mahina", "saal", "baat", "kaam", "madad", "jaankari",
    "jankari", "sawal", "sawaal", "puchna", "poochna", "chahiye", "chahta", "chahti", "wala",
    "wali", "wale", "delhi", "mumbai", "bangalore", "bengaluru", "pune", "chennai", "kolkata",
    "hyderabad", "jaipur", "lucknow", "india", "bharat",
    "नाम", "ग्राहक", "बुकिंग", "गाड़ी", "गाडी", "शिकायत", "समस्या", "दिक्कत", "परेशानी", "बिल", "पैसा",
    "पैसे", "ऑर्डर", "डिलीवरी", "डॉक्टर", "दवाई", "दवा", "रिपोर्ट", "नंबर", "मोबाइल", "फ़ोन", "फोन",
    "पता", "घर", "दुकान", "सोमवार", "मंगलवार", "बुधवार", "गुरुवार", "शुक्रवार", "शनिवार", "रविवार",
    "सुबह", "शाम", "रात", "दिन", "हफ्ता", "महीना", "साल", "बात", "काम", "मदद", "जानकारी", "सवाल",
    "पूछना", "चाहिए", "चाहता", "चाहती", "वाला", "वाली", "वाले", "सर्विस", "अपॉइंटमेंट",
    // Hebrew
    "תור", "תורים", "חשבון", "חשבונית", "הזמנה", "בעיה", "שאלה", "תלונה", "תיקון", "נזק",
    "דליפה", "משלוח", "חבילה", "מרשם", "תוצאות", "בדיקה", "טיפול", "רופא", "רופאה", "מספר",
    "טלפון", "כתובת", "רחוב", "שם", "לקוח", "לקוחה", "מטופל", "מטופלת", "ראשון", "שני",
    "שלישי", "רביעי", "חמישי", "שישי", "שבת", "היום", "מחר", "אתמול", "שבוע", "חודש",
    "תל", "אביב", "ירושלים", "חיפה", "ישראל", "מישהו", "מישהי", "אנשים", "כולם",
    "tor", "cheshbon", "heshbon", "hazmana", "beaya", "sheela", "tipul", "rofe", "mispar",
    "telefon", "ktovet", "shem", "lakoach", "israel", "tel", "aviv", "yerushalayim",
    // Neutral
    "unknown", "anonymous", "anonym", "unbekannt", "test", "admin", "null", "none", "nobody",
];

/// Function words that never belong to a name. Name particles (von, van, de, der, bin,
/// ben, al, …) are deliberately absent: "Ursula von der Leyen" is a name.
#[rustfmt::skip]
pub(crate) const FUNCTION_WORDS: &[&str] = &[
    "the", "a", "an", "and", "or", "about", "from", "with", "for", "to", "in", "on", "is", "was",
    "not", "regarding", "of", "at", "by", "this", "that", "these", "those", "it's", "its",
    "und", "oder", "nicht", "kein", "keine", "wegen", "mit", "für", "das", "ein", "eine", "dem",
    "des", "zum", "zur", "bei", "aus", "auf", "über", "unter", "ist", "bin", "sind", "war",
    "aur", "se", "ko", "ka", "ki", "ke", "ne", "par", "mein", "me", "bhi", "toh", "to",
    "और", "से", "को", "का", "की", "के", "ने", "पर", "में", "भी", "तो", "עם", "על", "לגבי", "של",
    "זה", "זאת", "גם", "רק", "כי", "אבל", "אם", "או",
];

/// Words that end a name being read after a cue ("this is John *calling* about…").
#[rustfmt::skip]
pub(crate) const STOP_WORDS: &[&str] = &[
    // English
    "and", "from", "about", "calling", "call", "called", "speaking", "here", "with", "at", "for",
    "of", "to", "in", "on", "regarding", "the", "a", "an", "my", "your", "i", "i'm", "is", "was",
    "but", "please", "again", "also", "just", "not", "still", "yes", "no", "ok", "okay", "sir",
    "wanted", "want", "would", "need", "have", "had", "back", "who", "how", "ringing", "phoning",
    "returning", "speaking", "there", "love", "mate", "actually", "by",
    // German
    "und", "von", "vom", "aus", "bei", "wegen", "am", "im", "hier", "ich", "mit", "für", "fuer",
    "zu", "zum", "zur", "der", "die", "das", "den", "dem", "ein", "eine", "ja", "nein", "bitte",
    "danke", "möchte", "moechte", "wollte", "will", "hätte", "haette", "habe", "hab", "rufe",
    "wieder", "auch", "nur", "noch", "schon", "nicht", "kein", "keine", "gerne", "gern", "an",
    "egal", "dran", "apparat",
    // Hindi (romanized and Devanagari)
    "hai", "hain", "hoon", "hun", "hu", "bol", "baat", "se", "ko", "ka", "ki", "ke", "aur",
    "sahab", "raha", "rahi", "kar", "ne", "ji", "है", "हैं", "हूँ", "हूं", "हु", "बोल", "बात",
    "से", "को", "का", "की", "के", "और", "रहा", "रही", "जी",
    // Hebrew
    "ו", "עם", "על", "לגבי", "בקשר", "בעניין", "של", "את", "זה", "זאת", "אני", "ואני", "רוצה",
    "רציתי", "צריך", "צריכה", "מתקשר", "מתקשרת", "פונה", "מבקש", "מבקשת", "יכול", "יכולה", "חושב",
    "חושבת", "לא", "כן", "גם", "רק", "מ", "כי", "אבל", "מאוד", "פה", "כאן", "שוב", "מחכה", "מנסה",
    "מעוניין", "מעוניינת", "שמח", "שמחה", "מצטער", "מצטערת", "בסדר", "תודה", "שלום", "רגע", "הוא",
    "היא", "מדבר", "מדברת", "לקוח", "לקוחה", "ה", "מה", "איך", "למה", "בבקשה", "הבת", "הבן",
];

/// Phrases only the agent says; a segment containing one is the agent's.
#[rustfmt::skip]
pub(crate) const AGENT_SERVICE_PHRASES: &[&str] = &[
    "how can i help", "how may i help", "how can we help", "what can i do for you",
    "thank you for calling", "thanks for calling", "you're through to", "youre through to",
    "you are through to", "you're speaking to", "you're speaking with", "you are speaking to",
    "how can i assist", "how may i assist", "what can we do for you", "welcome to",
    "was kann ich für sie tun", "was kann ich fuer sie tun", "wie kann ich ihnen helfen",
    "wie kann ich helfen", "danke für ihren anruf", "vielen dank für ihren anruf",
    "was darf ich für sie tun", "sie sprechen mit", "wie darf ich ihnen helfen",
    "kya madad kar", "kaise madad kar", "kya seva kar", "kya sewa kar", "aapki kya madad",
    "aapki kaise madad", "क्या मदद कर", "कैसे मदद कर", "क्या सेवा कर", "में आपका स्वागत",
    "mein aapka swagat", "me aapka swagat", "איך אפשר לעזור", "במה אפשר לעזור", "איך אוכל לעזור",
    "במה אוכל לעזור", "במה אני יכול לעזור", "במה אני יכולה לעזור", "איך אני יכולה לעזור",
    "איך אני יכול לעזור", "eich efshar laazor", "ech efshar laazor", "bama efshar laazor",
];

/// Questions in which the agent asks for the caller's name: the caller's next turn answers.
#[rustfmt::skip]
pub(crate) const NAME_QUESTIONS: &[&str] = &[
    "your name", "may i have your name", "can i take your name", "can i get your name",
    "who am i speaking", "who am i speaking to", "who's calling", "whos calling", "who is calling",
    "who is this", "your surname", "your full name", "ihr name", "ihren namen", "ihr nachname",
    "ihren nachnamen", "mit wem spreche ich", "wie war ihr name", "wie ist ihr name",
    "wie heißen sie", "wie heissen sie", "wer spricht", "wer ist da", "aapka naam", "apka naam",
    "aap ka naam", "naam bataiye", "naam bata", "kaun bol raha", "kaun bol rahe", "kaun baat",
    "आपका नाम", "नाम बताइए", "नाम बताइये", "कौन बोल रहे", "कौन बोल रहा", "מה השם", "מה שמך",
    "מה שמך", "עם מי אני מדבר", "עם מי אני מדברת", "איך קוראים לך", "מי מדבר", "מי מדברת",
    "ma hashem", "eich korim lecha", "eich korim lach",
];

/// Words with which an agent asks "am I speaking with X?" before a name.
#[rustfmt::skip]
pub(crate) const ADDRESS_CUES: &[&[&str]] = &[
    &["speaking", "with"], &["speaking", "to"], &["is", "that"], &["is", "this"], &["am", "i"],
    &["spreche", "ich", "mit"], &["bin", "ich", "bei"], &["ist", "dort"], &["ist", "da"],
    &["sind", "sie"], &["spreche", "ich"], &["מדבר", "עם"], &["מדברת", "עם"], &["זה"], &["זאת"],
    &["kya", "main"], &["kya", "mai"], &["क्या", "मैं"], &["kya", "aap"], &["क्या", "आप"],
    &["ani", "medaber", "im"], &["ani", "medaberet", "im"], &["אני", "מדבר", "עם"],
    &["אני", "מדברת", "עם"],
];

/// After "<intro> <name>", these introduce the agent's employer ("this is Sarah from ACME").
pub(crate) const AGENT_EMPLOYER_WORDS: &[&str] =
    &["from", "von", "bei", "at", "with", "se", "से", "מ"];

/// Phrases that say the caller speaks for someone else; the name after them (or before
/// them for Hindi postpositions) is a third party.
#[rustfmt::skip]
pub(crate) const ON_BEHALF_BEFORE: &[&[&str]] = &[
    &["on", "behalf", "of"], &["calling", "for"], &["ringing", "for"], &["phoning", "for"],
    &["calling", "about", "my"], &["calling", "on", "behalf"], &["im", "auftrag", "von"],
    &["im", "namen", "von"], &["für", "herrn"], &["für", "frau"], &["fuer", "herrn"],
    &["für", "meinen"], &["für", "meine"], &["wegen", "meiner"], &["wegen", "meines"],
    &["in", "vertretung", "von"], &["בשם"], &["בשביל"], &["עבור"], &["מטעם"], &["beshem"],
    &["bishvil"], &["avur"],
];
#[rustfmt::skip]
pub(crate) const ON_BEHALF_AFTER: &[&[&str]] = &[
    &["ki", "taraf", "se"], &["ki", "or", "se"], &["ke", "liye"], &["ke", "liya"],
    &["की", "तरफ़", "से"], &["की", "तरफ", "से"], &["की", "ओर", "से"], &["के", "लिए"],
    &["ke", "behalf", "pe"], &["ke", "behalf", "par"],
];
/// Possessive particles between a name and a kinship word (Hindi "Sharma ji *ka* beta").
pub(crate) const POSSESSIVE_AFTER_NAME: &[&str] = &["ka", "ki", "ke", "का", "की", "के"];
/// Possessive particles between a kinship word and a name ("Tochter *von* Frau X").
pub(crate) const POSSESSIVE_BEFORE_NAME: &[&str] =
    &["of", "von", "vom", "der", "des", "של", "shel"];
/// "my" in each language: "my mother, Frau X" names a third party.
#[rustfmt::skip]
pub(crate) const MY: &[&str] = &[
    "my", "our", "mein", "meine", "meinen", "meiner", "meinem", "unser", "unsere", "unseren",
    "unserer", "mera", "meri", "mere", "hamare", "hamari", "hamara", "मेरा", "मेरी", "मेरे",
    "हमारे", "हमारी", "हमारा", "his", "her", "their", "sein", "seine", "seiner", "ihre",
    "ihrer", "ihren", "uska", "uski", "uske", "उसका", "उसकी", "उसके", "unka", "unki", "unke",
    "उनका", "उनकी", "उनके", "apne", "apni", "apna", "अपने", "अपनी", "अपना",
];

/// A short answer that confirms being addressed ("Hello, Mrs Davies?" – "Yes?").
#[rustfmt::skip]
pub(crate) const CONFIRMATIONS: &[&str] = &[
    "yes", "yeah", "yep", "speaking", "that's me", "thats me", "it is", "ja", "jawohl", "genau",
    "am apparat", "ja bitte", "haan", "haan ji", "ji", "ji haan", "boliye", "ha", "haanji", "כן",
    "מדבר", "מדברת", "ken", "zeh ani", "זה אני", "yes speaking", "ja am apparat", "hello", "hallo",
];

/// Female and male first names (Latin script, folded), for a gender check against titles
/// and between caller and customer. Small on purpose: names missing here just give no hint.
#[rustfmt::skip]
pub(crate) const FEMALE_FIRST: &[&str] = &[
    // de/en
    "anna", "anne", "andrea", "angelika", "anja", "annette", "barbara", "bettina", "birgit",
    "brigitte", "carina", "carola", "christa", "christina", "christine", "claudia", "cornelia",
    "dagmar", "daniela", "doris", "elke", "elisabeth", "emma", "erika", "eva", "franziska",
    "gabriele", "gisela", "hannah", "heike", "helga", "ingrid", "iris", "jana", "jasmin",
    "johanna", "julia", "jutta", "karin", "katharina", "kathrin", "katrin", "kerstin", "klara",
    "laura", "lea", "lena", "lisa", "manuela", "maria", "marie", "marion", "martina", "melanie",
    "monika", "nadine", "nicole", "petra", "renate", "sabine", "sandra", "sarah", "sara",
    "silke", "simone", "sophie", "stefanie", "susanne", "tanja", "ursula", "ute", "waltraud",
    "mary", "margaret", "susan", "linda", "elizabeth", "jennifer", "patricia", "emily", "jessica",
    "sophia", "olivia", "amelia", "charlotte", "rachel", "rebecca", "helen", "catherine",
    "victoria", "lucy", "emma", "chloe", "hannah", "grace", "megan", "sian", "bethan", "rhiannon",
    "nia", "ffion", "gwen", "carys", "eleri", "siobhan", "fiona", "karen", "julie", "joanne",
    "claire", "louise", "michelle", "nicola", "gillian", "dorothy", "joan", "jean", "maureen",
    "eileen", "pauline", "alison", "wendy", "tracey", "kelly", "amy", "holly", "jade", "ellie",
    "paula", "angela", "denise", "diane", "janet", "christine", "ann", "sue", "kate", "katie",
    "anita", "monica", "andrea", "daniela", "michaela", "gabriela", "jane",
    // hi
    "priya", "anjali", "sunita", "anita", "pooja", "puja", "neha", "kavita", "kavya", "deepika",
    "divya", "meena", "rekha", "rani", "sita", "gita", "geeta", "seema", "sonal", "sonia",
    "shweta", "swati", "aarti", "arti", "asha", "usha", "lata", "nisha", "ritu", "preeti",
    "priyanka", "shreya", "ananya", "aishwarya", "lakshmi", "radha", "parvati", "savita",
    "sushma", "suman", "poonam", "payal", "komal", "jyoti", "manisha", "madhuri", "nandini",
    "amita", "sunaina", "shalini", "smita", "vandana", "archana", "indira", "aditi",
    // he
    "rachel", "sarah", "miriam", "michal", "noa", "tamar", "yael", "shira", "maya", "rivka",
    "leah", "esther", "hadas", "orly", "osnat", "dana", "galit", "ruth", "naama", "efrat",
    "ayelet", "hila", "keren", "limor", "merav", "sigal", "tali", "noga", "liat",
    "ronit", "yifat", "avital", "batya", "chana", "hanna", "dvora", "devorah", "yehudit", "ilana",
];
#[rustfmt::skip]
pub(crate) const MALE_FIRST: &[&str] = &[
    // de/en
    "peter", "andreas", "michael", "thomas", "klaus", "hans", "jürgen", "juergen", "jurgen",
    "stefan", "stephan", "frank", "markus", "matthias", "christian", "wolfgang", "uwe", "dieter",
    "günter", "guenter", "gunter", "horst", "manfred", "bernd", "heinz", "werner", "gerhard",
    "helmut", "karl", "rainer", "ralf", "jörg", "joerg", "jorg", "holger", "sven", "tobias",
    "florian", "sebastian", "alexander", "daniel", "dirk", "jan", "jens", "lukas", "lars",
    "kai", "martin", "max", "maximilian", "moritz", "niklas", "oliver", "patrick", "paul",
    "philipp", "robert", "sascha", "simon", "thorsten", "torsten", "tim", "volker", "friedrich",
    "fritz", "georg", "heinrich", "hermann", "johann", "johannes", "josef", "joseph", "ludwig",
    "otto", "walter", "wilhelm", "ulrich", "norbert", "gerd", "detlef", "jochen", "armin",
    "john", "james", "david", "richard", "william", "charles", "george", "edward", "henry",
    "gareth", "rhys", "dafydd", "aled", "emyr", "gethin", "ieuan", "dylan", "owen", "huw", "ian", "iain", "gavin", "stuart",
    "kevin", "gary", "steven", "stephen", "mark", "paul", "anthony", "andrew", "christopher",
    "matthew", "joshua", "ryan", "jack", "harry", "oliver", "thomas", "alan", "brian", "colin",
    "derek", "graham", "keith", "neil", "nigel", "roger", "trevor", "barry", "terry", "dennis",
    "geoffrey", "kenneth", "raymond", "ronald", "donald", "douglas", "bob", "bill", "tom",
    "sean", "liam", "connor", "callum", "dean", "carl", "craig", "darren",
    // hi
    "rahul", "amit", "vikram", "sunil", "anil", "rajesh", "suresh", "ramesh", "mahesh",
    "ganesh", "dinesh", "mukesh", "rakesh", "naresh", "sanjay", "vijay", "ajay", "arjun",
    "rohit", "mohit", "sumit", "ankit", "arun", "varun", "karan", "kunal", "nikhil", "manish",
    "ashok", "deepak", "pradeep", "sandeep", "kuldeep", "gaurav", "saurabh", "vivek", "vishal",
    "rajiv", "sanjeev", "harish", "girish", "satish", "prakash", "ravi", "raj", "ram", "shyam",
    "krishna", "gopal", "mohan", "sohan", "rohan", "aditya", "abhishek", "akash", "aakash",
    "siddharth", "yash", "pankaj", "neeraj", "manoj", "vinod", "ashish", "anand", "alok",
    "raghav", "rajendra", "surendra", "mahendra", "narendra", "devendra", "jitendra",
    "mohammed", "mohammad", "imran", "salman", "aamir", "sameer", "arvind", "hemant", "lalit",
    // he
    "david", "moshe", "yosef", "yossi", "avraham", "avi", "yaakov", "yitzhak", "itzik", "daniel",
    "eli", "yehuda", "shimon", "haim", "chaim", "shlomo", "aharon", "ariel", "eyal", "ido",
    "omer", "oren", "amir", "gil", "guy", "itai", "nadav", "noam", "ofer", "ronen",
    "uri", "yoav", "yonatan", "ehud", "benny", "dov", "dudu", "meir", "menachem", "nir",
    "ron", "tzvi", "zvi", "yigal", "yair", "eitan", "asaf", "boaz", "erez", "gadi",
    "amos", "rafi", "raphael", "rafael", "natan", "nathan", "baruch", "mordechai", "eliyahu",
];

/// Spelling alphabets: German DIN 5009 (old and 2022 forms), NATO/ICAO, British
/// ("S for sugar"). The letter a word stands for is its first letter, except where noted.
#[rustfmt::skip]
pub(crate) const SPELLING_WORDS: &[(&str, &str)] = &[
    ("anton", "a"), ("ärger", "ä"), ("aerger", "ä"), ("berta", "b"), ("bertha", "b"),
    ("cäsar", "c"), ("caesar", "c"), ("charlotte", "c"), ("dora", "d"), ("emil", "e"),
    ("friedrich", "f"), ("gustav", "g"), ("heinrich", "h"), ("ida", "i"), ("julius", "j"),
    ("kaufmann", "k"), ("konrad", "k"), ("ludwig", "l"), ("martha", "m"), ("marta", "m"),
    ("nordpol", "n"), ("otto", "o"), ("ökonom", "ö"), ("oekonom", "ö"), ("paula", "p"),
    ("quelle", "q"), ("richard", "r"), ("samuel", "s"), ("siegfried", "s"), ("schule", "sch"),
    ("eszett", "ß"), ("theodor", "t"), ("ulrich", "u"), ("übermut", "ü"), ("uebermut", "ü"),
    ("viktor", "v"), ("wilhelm", "w"), ("xanthippe", "x"), ("ypsilon", "y"),
    ("zacharias", "z"), ("zeppelin", "z"), ("aachen", "a"), ("berlin", "b"), ("chemnitz", "c"),
    ("düsseldorf", "d"), ("essen", "e"), ("frankfurt", "f"), ("goslar", "g"), ("hamburg", "h"),
    ("ingelheim", "i"), ("jena", "j"), ("köln", "k"), ("leipzig", "l"), ("münchen", "m"),
    ("nürnberg", "n"), ("offenbach", "o"), ("potsdam", "p"), ("quickborn", "q"),
    ("rostock", "r"), ("salzwedel", "s"), ("tübingen", "t"), ("unna", "u"),
    ("völklingen", "v"), ("wuppertal", "w"), ("xanten", "x"), ("zwickau", "z"),
    ("alfa", "a"), ("alpha", "a"), ("bravo", "b"), ("charlie", "c"), ("delta", "d"),
    ("echo", "e"), ("foxtrot", "f"), ("golf", "g"), ("hotel", "h"), ("india", "i"),
    ("juliet", "j"), ("juliett", "j"), ("kilo", "k"), ("lima", "l"), ("mike", "m"),
    ("november", "n"), ("oscar", "o"), ("papa", "p"), ("quebec", "q"), ("romeo", "r"),
    ("sierra", "s"), ("tango", "t"), ("uniform", "u"), ("victor", "v"), ("whiskey", "w"),
    ("whisky", "w"), ("x-ray", "x"), ("xray", "x"), ("yankee", "y"), ("zulu", "z"),
];

pub(crate) fn is_title(lower: &str) -> bool {
    TITLES.contains(&lower) && !TRAILING_HONORIFICS.contains(&lower)
}

/// A lowercase token that can never be (part of) a person's name.
pub(crate) fn never_a_name(lower: &str) -> Option<&'static str> {
    if GREETING_WORDS.contains(&lower) {
        return Some("a greeting");
    }
    if FILLER.contains(&lower) {
        return Some("filler or an interjection");
    }
    if PRONOUNS.contains(&lower) {
        return Some("a pronoun");
    }
    if KINSHIP.contains(&lower) {
        return Some("a kinship or role word");
    }
    if COMPANY_WORDS.contains(&lower) || is_business_compound(lower) {
        return Some("a business word");
    }
    if COMMON_WORDS.contains(&lower) || FUNCTION_WORDS.contains(&lower) {
        return Some("an ordinary word");
    }
    None
}

/// "zahnarztpraxis", "heizungsservice", "müllergmbh": a compound ending in a business word.
pub(crate) fn is_business_compound(lower: &str) -> bool {
    if SUFFIX_SURNAMES.contains(&lower) {
        return false;
    }
    BUSINESS_SUFFIXES.iter().any(|s| {
        lower.len() > s.len() + 2 && lower.ends_with(s) && {
            // "Neuhaus"-like surnames: a short stem before "haus"/"bau" is a name.
            let stem = lower.len() - s.len();
            !(matches!(*s, "haus" | "bau" | "markt" | "team" | "care") && stem < 6)
        }
    })
}
