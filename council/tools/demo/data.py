"""The demo data set as tables: Northshire County Council, its districts, its provider network,
the outcome measures it commissions against and its commissioning history (needs, decisions,
agreements and what happened to them). Everything here is fictional; identifiers only have the
right formats, postcodes use the unused NS, WX and LX areas, phone numbers come from Ofcom's
ranges reserved for drama and web and email domains end in the reserved `.example`.

The loader (council/tools/demo/loader.py) turns these tables into commands, each run in
business time on the date given here, so the history reads as it happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from council.kernel.contracts.integrator import (
    ArrangementType,
    EndingKind,
    SourcingOption,
    VariationKind,
)
from council.kernel.contracts.outcomes import Direction
from council.kernel.contracts.provider_registry import OrganisationType

COUNCIL = "Northshire County Council"
START = date(2023, 4, 3)  # the first working day of the 2023/24 financial year
END = date(2026, 10, 16)  # the last day the history reaches (a month before it was written)

# ---------------------------------------------------------------------------------- places

# code: (town, postcode districts). The six districts are the areas the council's providers serve;
# Westvale (the neighbouring borough) and Lexford (where national firms have head offices) are
# outside the county.
DISTRICTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "AM": ("Ashby Market", ("NS1", "NS2")),
    "BF": ("Brookfield", ("NS3", "NS4")),
    "CT": ("Castleton", ("NS5", "NS6")),
    "DB": ("Deanbridge", ("NS7",)),
    "EM": ("Eastmoor", ("NS8",)),
    "FW": ("Fenwick", ("NS9", "NS10")),
    "WV": ("Westvale", ("WX1", "WX2")),
    "LX": ("Lexford", ("LX1", "LX4")),
}
COUNTY_DISTRICTS = ("AM", "BF", "CT", "DB", "EM", "FW")
# The county (or unitary area) of an address in each district: Open Referral's state_province.
COUNTIES = {**dict.fromkeys(COUNTY_DISTRICTS, "Northshire"), "WV": "Westvale",
            "LX": "Lexfordshire"}

STREETS = (
    "Market Street", "High Street", "Station Road", "Church Lane", "Mill Road", "Victoria Road",
    "Queen Street", "Bridge Street", "North Road", "Park Lane", "Chapel Street", "Castle Street",
    "Moor Lane", "Dean Road", "Brook Street", "Fen Road", "Priory Walk", "Abbey Road",
    "Riverside Business Park", "Kingsway", "Orchard Close", "School Lane", "Wharf Road",
)
FIRST_NAMES = (
    "Amira", "Ben", "Chloe", "Daniel", "Eleanor", "Farah", "George", "Hannah", "Imran", "Jess",
    "Kwame", "Laura", "Mohammed", "Niamh", "Oliver", "Priya", "Rhys", "Sophie", "Tariq", "Uma",
    "Vikram", "Wendy", "Yusuf", "Zara", "Callum", "Grace", "Harry", "Isla", "Joel", "Megan",
)
LAST_NAMES = (
    "Ahmed", "Baker", "Campbell", "Davies", "Evans", "Fletcher", "Green", "Hussain", "Ingram",
    "Jones", "Kaur", "Lewis", "Murphy", "Nowak", "O'Brien", "Patel", "Quinn", "Roberts", "Singh",
    "Taylor", "Walker", "Wright", "Young", "Clarke", "Mensah", "Harris", "Okafor", "Reid",
)
INSURERS = (
    "Albion Commercial Insurance", "Harbour Mutual Insurance", "Shire Insurance Brokers",
    "Northern Charities Insurance Scheme", "Pennant Underwriting",
)

# ---------------------------------------------------------------------------------- people

# Who does what at the council (the actor recorded on each event). Commissioners propose and
# take the decisions within their limit under the scheme of delegation (SCHEME below); the head
# of commissioning takes those above it; the Cabinet the largest (its decisions recorded by
# democratic services); finance pays.
MARKET_OFFICER = "integrator_admin:Sam Okafor"  # runs the provider registry
PERFORMANCE = "integrator_admin:Performance and Intelligence Team"
FINANCE = "integrator_admin:Lee Morgan (Finance)"
HEAD_OF_COMMISSIONING = "integrator_admin:Helen Carter (Head of Commissioning)"
CABINET = "integrator_admin:Cabinet (recorded by Democratic Services)"
ADULTS = "commissioner:Jo Patel"
CHILDREN = "commissioner:Marcus Reid"
PUBLIC_HEALTH = "commissioner:Aisha Khan"
PLACE = "commissioner:Tom Hughes"
DIGITAL = "commissioner:Priya Shah"

# The council's scheme of delegation (its constitution, part 3), set before the history
# begins: a commissioner takes a decision of up to COMMISSIONER_LIMIT pounds (awards,
# variations, extensions, business cases, payments); an integrator admin (the head of
# commissioning, finance) any, and alone raises an envelope or overrides the need for
# performance data; decisions of CABINET_FROM pounds or more are the Cabinet's.
COMMISSIONER_LIMIT = 50_000
CABINET_FROM = 1_000_000
SCHEME_REASON = ("Northshire County Council constitution, part 3: officers' scheme of "
                 "delegation. Commissioners decide up to £50,000; the head of commissioning "
                 "above that; key decisions of £1m or more go to Cabinet")

# ---------------------------------------------------------------------------------- measures


@dataclass(frozen=True)
class MeasureSpec:
    key: str
    name: str
    unit: str
    direction: Direction
    baseline: str  # the value in BASELINE_PERIOD
    target: str  # the value aimed for by `by` (the trajectory runs straight there)
    by: str  # a quarter
    source: str
    progress: float = 1.0  # how much of the planned change the measurements show (1 = on track)
    revised: tuple[str, ...] = ()  # quarters whose provisional figure is revised later


LOWER, HIGHER = Direction.LOWER_IS_BETTER, Direction.HIGHER_IS_BETTER
BASELINE_PERIOD = "2023-Q1"
GEOGRAPHY = "Northshire (upper-tier local authority)"
MEASURES = (
    MeasureSpec("obesity", "Teenage obesity rate (13 to 17 year olds)", "%", LOWER, "21.4", "18",
                "2027-Q1", "NCMP-linked school health survey", 0.9, ("2024-Q2", "2025-Q2")),
    MeasureSpec("smoking", "Adult smoking prevalence", "%", LOWER, "13.1", "10", "2027-Q1",
                "Annual Population Survey (quarterly rolling)", 1.15, ("2024-Q4",)),
    MeasureSpec("discharges", "Delayed hospital discharges", "people per day", LOWER, "52", "30",
                "2026-Q4", "NHS acute discharge situation report", 0.8, ("2025-Q3",)),
    MeasureSpec("reablement", "Older people still at home 91 days after reablement", "%", HIGHER,
                "79", "85", "2026-Q4", "Adult Social Care Outcomes Framework 2B", 1.0),
    MeasureSpec("repeat-homelessness", "Repeat homelessness", "households per year", LOWER,
                "212", "150", "2026-Q3", "H-CLIC returns", 0.7, ("2025-Q1",)),
    MeasureSpec("tenancies", "New tenancies sustained for six months", "%", HIGHER, "71", "82",
                "2027-Q2", "Housing options case records", 1.05),
    MeasureSpec("drug-treatment", "Successful completions of drug treatment", "%", HIGHER, "17",
                "24", "2028-Q1", "National Drug Treatment Monitoring System", 1.2),
    MeasureSpec("neet", "Young people not in education, employment or training", "%", LOWER,
                "5.8", "4.5", "2026-Q3", "Client Caseload Information System", 0.6),
    MeasureSpec("carer-qol", "Carer-reported quality of life", "score out of 12", HIGHER, "7.1",
                "7.8", "2026-Q3", "Survey of Adult Carers in England", 0.8),
    MeasureSpec("active", "Physically active adults", "%", HIGHER, "61", "66", "2028-Q3",
                "Active Lives Adult Survey", 1.1),
    MeasureSpec("lonely", "Adults who feel lonely often or always", "%", LOWER, "24", "18",
                "2027-Q1", "Community Life Survey (Northshire boost)", 0.5),
    MeasureSpec("digital", "Adults lacking basic digital skills", "%", LOWER, "14", "11",
                "2026-Q2", "Essential Digital Skills survey", 1.0),
    MeasureSpec("rereferrals", "Re-referrals to children's social care within 12 months", "%",
                LOWER, "24", "18", "2026-Q4", "Children in Need census", 0.75),
    MeasureSpec("disabled-employment", "Disabled adults in paid employment", "%", HIGHER, "53",
                "58", "2027-Q3", "Annual Population Survey", 0.9),
    # Contract monitoring of services no population survey measures: their performance data.
    MeasureSpec("journeys", "Home to school journeys on time", "%", HIGHER, "97.5", "99",
                "2026-Q3", "Passenger transport contract monitoring", 1.0),
    MeasureSpec("audits", "Facilities quality audits passed", "%", HIGHER, "91", "95",
                "2026-Q2", "Facilities management quality audits", 1.0),
)
MEASURES_PUBLISHED_AFTER = 50  # days after a quarter ends that its figures come out
REVISED_AFTER = 120  # days after the provisional figure that a revision comes out

# ---------------------------------------------------------------------------------- delivery

# What providers report each month, by the need's service category: (activity type, pounds of
# the agreement's monthly budget per unit, share of the budget it stands for).
DELIVERY: dict[str, tuple[tuple[str, int, float], ...]] = {
    "weight-management": (("people_reached", 150, 0.7), ("sessions_delivered", 400, 0.3)),
    "stop-smoking": (("quit_dates_set", 120, 0.6), ("four_week_quits", 300, 0.4)),
    "home-care": (("care_hours", 24, 1.0),),
    "reablement": (("discharges_supported", 1800, 0.8), ("assessments", 250, 0.2)),
    "carers-support": (("people_reached", 120, 1.0),),
    "day-opportunities": (("sessions_delivered", 60, 1.0),),
    "homelessness-prevention": (("people_reached", 600, 0.7), ("tenancies_sustained", 2500, 0.3)),
    "tenancy-sustainment": (("tenancies_sustained", 1500, 1.0),),
    "substance-misuse": (("people_reached", 900, 0.7), ("people_completed", 3000, 0.3)),
    "youth-services": (("sessions_delivered", 250, 1.0),),
    "early-help": (("assessments", 700, 0.6), ("sessions_delivered", 180, 0.4)),
    "send-short-breaks": (("sessions_delivered", 150, 1.0),),
    "community-transport": (("journeys", 14, 1.0),),
    "home-to-school-transport": (("journeys", 18, 1.0),),
    "digital-inclusion": (("people_completed", 220, 1.0),),
    "leisure-centres": (("people_reached", 6, 1.0),),
    "physical-activity": (("sessions_delivered", 90, 1.0),),
    "employment-support": (("people_reached", 700, 0.7), ("people_completed", 2500, 0.3)),
    "supported-housing": (("bed_nights", 45, 1.0),),
}
DELIVERY_DEFAULT = (("milestone_met", 12_000, 1.0),)  # facilities, IT: monthly service reports
DELIVERY_REPORTED_AFTER = (3, 12)  # days after a month ends that its report comes in
CORRECTION_EVERY = 45  # about one report in this many is corrected a few weeks later

# Payment by results: agreements with reward terms get a quarterly rate card paying part of
# their results share on delivery and part on outcomes, settled the month after each quarter.
SETTLEMENT_DAY = 21  # of the month after a quarter ends
RESULTS_PAID_AFTER = (7, 14)  # days after the settlement that finance pays what fell due
OUTCOME_SHARE = 0.7  # of a quarter's results payment that is paid on outcomes

# ---------------------------------------------------------------------------------- categories

# code: (capacity unit, smallest, largest, what a provider in it does)
CATEGORIES: dict[str, tuple[str, int, int, str]] = {
    "home-care": ("hours of care per week", 300, 2500, "personal care and support at home"),
    "residential-care": ("beds", 20, 90, "residential and nursing care"),
    "day-opportunities": ("places per day", 15, 60, "day opportunities and activities"),
    "reablement": ("packages per month", 20, 120, "reablement after a hospital stay"),
    "carers-support": ("carers supported per year", 100, 1500, "advice and breaks for carers"),
    "early-help": ("families per year", 50, 400, "early help for families"),
    "fostering": ("foster placements", 10, 60, "foster care placements"),
    "youth-services": ("young people per week", 40, 300, "youth clubs and youth work"),
    "send-short-breaks": ("short-break sessions per month", 30, 200,
                          "short breaks for disabled children"),
    "weight-management": ("participants per year", 100, 800, "healthy weight programmes"),
    "stop-smoking": ("quit attempts per year", 200, 1500, "stop smoking support"),
    "sexual-health": ("appointments per month", 200, 2000, "sexual health services"),
    "substance-misuse": ("people in treatment", 100, 1200, "drug and alcohol treatment"),
    "health-checks": ("health checks per year", 500, 5000, "community health checks"),
    "leisure-centres": ("leisure centres", 1, 6, "leisure centre operation"),
    "physical-activity": ("participants per week", 50, 600, "community sport and activity"),
    "libraries-culture": ("venues", 1, 12, "library, arts and heritage services"),
    "digital-inclusion": ("learners per year", 50, 800, "digital skills and device access"),
    "software-services": ("days of support per month", 10, 200, "software and hosting"),
    "cyber-security": ("monitored devices", 500, 8000, "cyber security services"),
    "catering": ("meals per day", 200, 5000, "catering"),
    "cleaning": ("sites", 5, 80, "building cleaning"),
    "grounds-maintenance": ("hectares maintained", 5, 300, "parks and grounds maintenance"),
    "community-transport": ("passenger trips per month", 200, 3000, "community transport"),
    "home-to-school-transport": ("vehicles", 3, 120, "home to school transport"),
    "homelessness-prevention": ("households supported per year", 100, 1500,
                                "homelessness prevention and advice"),
    "supported-housing": ("bed spaces", 8, 120, "supported accommodation"),
    "tenancy-sustainment": ("households supported per year", 50, 600, "tenancy support"),
    "employment-support": ("people supported per year", 50, 800, "employment support"),
    "adult-learning": ("learners per year", 100, 3000, "adult learning and skills"),
}
REGULATED_BY_CQC = frozenset({"home-care", "residential-care", "reablement"})
REGULATED_BY_OFSTED = frozenset({"fostering"})
WORKS_WITH_VULNERABLE_PEOPLE = frozenset({
    "home-care", "residential-care", "day-opportunities", "reablement", "carers-support",
    "early-help", "fostering", "youth-services", "send-short-breaks", "substance-misuse",
    "supported-housing", "home-to-school-transport", "community-transport",
    "homelessness-prevention", "tenancy-sustainment",
})

# ---------------------------------------------------------------------------------- providers

V, S, L = OrganisationType.VCSE, OrganisationType.SME, OrganisationType.LARGE_PRIVATE
PB, C, PT = (OrganisationType.PUBLIC_BODY, OrganisationType.COMMUNITY_GROUP,
             OrganisationType.PARTNERSHIP)


@dataclass(frozen=True)
class ProviderSpec:
    key: str
    name: str
    kind: OrganisationType
    home: str  # district code where it is based
    serves: str  # "*" for the whole county, else district codes
    categories: str  # taxonomy codes, space-separated
    fate: str = "approved"  # see FATES in the loader
    members: tuple[str, ...] = ()
    description: str | None = None

    @property
    def category_codes(self) -> list[str]:
        return self.categories.split()

    @property
    def districts(self) -> tuple[str, ...]:
        return COUNTY_DISTRICTS if self.serves == "*" else tuple(self.serves.split())


P = ProviderSpec
PROVIDERS: tuple[ProviderSpec, ...] = (
    # -- public bodies, including a neighbouring council selling a shared service
    P("westvale-shared", "Westvale Borough Council (Shared Services)", PB, "WV", "*",
      "software-services cyber-security",
      description="Westvale Borough Council's ICT shared service: a security operations centre "
      "and hosting, sold to neighbouring councils, schools and the police."),
    P("nhs-community", "Northshire Community Health NHS Trust", PB, "CT", "*",
      "reablement stop-smoking health-checks sexual-health",
      description="The county's community health trust: therapy, district nursing, specialist "
      "stop smoking and sexual health clinics."),
    P("mental-health-ft", "Northshire and Westvale Mental Health NHS Foundation Trust", PB, "BF",
      "*", "substance-misuse supported-housing"),
    P("fire", "Northshire Fire and Rescue Service", PB, "AM", "*", "health-checks",
      description="Safe and Well visits combining fire safety with falls and health checks."),
    P("college", "Northshire College", PB, "CT", "*",
      "adult-learning employment-support digital-inclusion"),
    P("university", "University of Northshire", PB, "AM", "*", "adult-learning"),
    P("westvale-homes", "Westvale Homes", PB, "WV", "EM FW",
      "tenancy-sustainment supported-housing",
      description="Westvale Borough Council's arm's-length housing company, offering tenancy "
      "support across the boundary into Eastmoor and Fenwick."),
    P("eastmoor-town-council", "Eastmoor Town Council", PB, "EM", "EM",
      "grounds-maintenance physical-activity"),
    P("castleton-town-council", "Castleton Town Council", PB, "CT", "CT",
      "grounds-maintenance libraries-culture"),
    P("deanbridge-academy", "Deanbridge Academy Trust", PB, "DB", "DB",
      "physical-activity youth-services"),
    # -- large private firms
    P("everbright", "Everbright Care Group Ltd", L, "LX", "*",
      "home-care residential-care reablement"),
    P("calder", "Calder Facilities Group plc", L, "LX", "*", "cleaning grounds-maintenance"),
    P("lumen", "Lumen Digital Services plc", L, "LX", "*", "software-services cyber-security"),
    P("roadlink", "Roadlink Passenger Services Ltd", L, "LX", "*",
      "home-to-school-transport community-transport"),
    P("meadowgate", "Meadowgate Healthcare Ltd", L, "LX", "BF DB",
      "residential-care reablement", fate="exited"),
    P("orchard-catering", "Orchard Catering Group Ltd", L, "LX", "*", "catering",
      fate="exited"),
    P("pathway-employment", "Pathway Employment Services Ltd", L, "LX", "*",
      "employment-support adult-learning"),
    P("greystone", "Greystone Leisure Operations Ltd", L, "LX", "EM",
      "leisure-centres physical-activity"),
    # -- voluntary, community and social enterprise organisations
    P("ageuk", "Age UK Northshire", V, "AM", "*", "day-opportunities carers-support reablement"),
    P("carers-centre", "Northshire Carers' Centre", V, "BF", "*", "carers-support"),
    P("brookfield-day-centre", "Brookfield Day Centre Trust", V, "BF", "BF AM",
      "day-opportunities"),
    P("ld-network", "Northshire Learning Disability Network", V, "CT", "*",
      "day-opportunities employment-support"),
    P("castleton-home-support", "Castleton Home Support Trust", V, "CT", "CT",
      "home-care carers-support"),
    P("deanbridge-cca", "Deanbridge Community Care Association", V, "DB", "DB",
      "day-opportunities home-care", fate="exited"),
    P("home-from-hospital", "Home from Hospital Northshire", V, "CT", "*", "reablement"),
    P("dementia-support", "Northshire Dementia Support", V, "DB", "*",
      "carers-support day-opportunities"),
    P("sight-hearing", "Northshire Sight and Hearing Trust", V, "AM", "*", "day-opportunities"),
    P("family-support-trust", "Northshire Family Support Trust", V, "CT", "*", "early-help"),
    P("brookfield-ypp", "Brookfield Young People's Project", V, "BF", "BF", "youth-services"),
    P("castleton-youth-trust", "Castleton Youth Trust", V, "CT", "CT", "youth-services"),
    P("deanbridge-club", "Deanbridge Boys' and Girls' Club", V, "DB", "DB",
      "youth-services physical-activity"),
    P("hearthside", "Hearthside Fostering", V, "AM", "*", "fostering"),
    P("little-steps", "Little Steps Northshire", V, "AM", "*", "early-help"),
    P("short-breaks-trust", "Northshire Short Breaks Trust", V, "BF", "*", "send-short-breaks"),
    P("kidz-play", "Kidz Play Eastmoor", V, "EM", "EM FW", "send-short-breaks"),
    P("young-carers", "Northshire Young Carers", V, "CT", "*", "carers-support youth-services"),
    P("fenwick-family-hub", "Fenwick Family Hub", V, "FW", "FW", "early-help"),
    P("food-partnership", "Northshire Food Partnership", V, "AM", "*",
      "weight-management catering"),
    P("leisure-trust", "Active Northshire Leisure Trust", V, "AM", "*",
      "leisure-centres physical-activity weight-management"),
    P("smokefree-northshire", "Smokefree Northshire", V, "BF", "*", "stop-smoking"),
    P("recovery-trust", "Northshire Recovery Trust", V, "CT", "*", "substance-misuse"),
    P("positive-health", "Positive Health Northshire", V, "AM", "*", "sexual-health"),
    P("eastmoor-wellbeing", "Eastmoor Wellbeing Centre", V, "EM", "EM",
      "health-checks day-opportunities"),
    P("housing-action", "Northshire Housing Action", V, "BF", "*",
      "homelessness-prevention tenancy-sustainment"),
    P("st-aidans", "St Aidan's Night Shelter", V, "AM", "AM BF",
      "homelessness-prevention supported-housing"),
    P("fenwick-foyer", "Fenwick Foyer", V, "FW", "*", "supported-housing employment-support"),
    P("womens-refuge", "Brookfield Women's Refuge", V, "BF", "*", "supported-housing"),
    P("advice-centre", "Ashby Market Advice Centre", V, "AM", "AM BF",
      "homelessness-prevention employment-support"),
    P("castleton-tenancy", "Castleton Tenancy Support Project", V, "CT", "CT",
      "tenancy-sustainment"),
    P("libraries-mutual", "Northshire Libraries Mutual", V, "CT", "*",
      "libraries-culture digital-inclusion"),
    P("deanbridge-arts", "Deanbridge Arts Centre", V, "DB", "DB", "libraries-culture"),
    P("sport-partnership", "Northshire Sport Partnership", V, "AM", "*", "physical-activity"),
    P("eastmoor-museum", "Eastmoor Museum Trust", V, "EM", "EM", "libraries-culture"),
    P("get-online", "Get Online Northshire", V, "BF", "*", "digital-inclusion"),
    P("tech4good", "Tech4Good Brookfield CIC", V, "BF", "BF AM",
      "digital-inclusion software-services", fate="graduated"),
    P("eastmoor-dial-a-ride", "Eastmoor Dial-a-Ride", V, "EM", "EM FW", "community-transport"),
    P("ashby-community-transport", "Ashby Market Community Transport", V, "AM", "AM",
      "community-transport"),
    P("wheels-to-work", "Northshire Wheels to Work", V, "DB", "*",
      "employment-support community-transport"),
    P("northshire-works", "Northshire Works", V, "CT", "*", "employment-support"),
    P("routes-to-work", "Routes to Work Northshire CIC", V, "BF", "*",
      "employment-support adult-learning"),
    P("learning-shop", "Brookfield Learning Shop", V, "BF", "BF",
      "adult-learning digital-inclusion"),
    P("enterprise-trust", "Castleton Enterprise Trust", V, "CT", "*", "employment-support"),
    P("green-spaces", "Green Spaces Northshire CIC", V, "DB", "*", "grounds-maintenance"),
    P("second-chance", "Second Chance Catering CIC", V, "AM", "*", "catering",
      fate="graduated"),
    P("clean-start", "Clean Start Social Enterprise CIC", V, "CT", "CT DB", "cleaning"),
    P("furniture-reuse", "Northshire Furniture Reuse Project", V, "DB", "*",
      "tenancy-sustainment"),
    P("wellbeing-network", "Northshire Mental Wellbeing Network", V, "BF", "*",
      "supported-housing day-opportunities"),
    P("harbour-counselling", "Harbour Counselling Service", V, "FW", "FW EM", "early-help"),
    P("rural-community-council", "Northshire Rural Community Council", V, "EM", "*",
      "digital-inclusion community-transport"),
    P("deanbridge-community-association", "Deanbridge Community Association", V, "DB", "DB",
      "day-opportunities libraries-culture"),
    P("fenwick-community-trust", "Fenwick Community Trust", V, "FW", "FW",
      "youth-services physical-activity"),
    P("volunteer-centre", "Northshire Volunteer Centre", V, "CT", "*", "carers-support"),
    P("domestic-abuse-service", "Northshire Domestic Abuse Service", V, "AM", "*",
      "supported-housing early-help"),
    P("food-bank", "Ashby Market Food Bank", V, "AM", "AM", "tenancy-sustainment"),
    P("mens-health", "Castleton Men's Health Project", V, "CT", "CT",
      "health-checks stop-smoking"),
    P("autism-support", "Northshire Autism Support", V, "DB", "*", "send-short-breaks"),
    P("deaf-children", "Northshire Deaf Children's Society", V, "EM", "*", "send-short-breaks"),
    # -- small and medium-sized enterprises
    P("brightwater", "Brightwater Home Care Ltd", S, "AM", "AM BF", "home-care",
      fate="suspended"),
    P("ashby-home-care", "Ashby Home Care Ltd", S, "AM", "AM", "home-care"),
    P("kindred", "Kindred Care Services Ltd", S, "CT", "CT DB", "home-care"),
    P("fenwick-homecare", "Fenwick Homecare Ltd", S, "FW", "FW EM", "home-care"),
    P("castleton-care", "Castleton Care at Home Ltd", S, "CT", "CT", "home-care"),
    P("willow-tree", "Willow Tree Home Care Ltd", S, "DB", "DB CT", "home-care"),
    P("deanbridge-domiciliary", "Deanbridge Domiciliary Services Ltd", S, "DB", "DB",
      "home-care"),
    P("oakfield", "Oakfield House Care Home Ltd", S, "BF", "BF", "residential-care"),
    P("laurels", "The Laurels Nursing Home Ltd", S, "EM", "EM", "residential-care"),
    P("rosewood", "Rosewood Lodge Ltd", S, "FW", "FW", "residential-care"),
    P("enable-northshire", "Enable Northshire Ltd", S, "CT", "*", "reablement home-care"),
    P("little-acorns", "Little Acorns Fostering Ltd", S, "BF", "*", "fostering"),
    P("brightstart", "Brightstart Family Services Ltd", S, "AM", "*", "early-help"),
    P("adventure-play", "Adventure Play Northshire Ltd", S, "EM", "*",
      "send-short-breaks youth-services"),
    P("pharmacies", "Northshire Pharmacies Ltd", S, "CT", "*",
      "stop-smoking sexual-health health-checks"),
    P("fitkids", "FitKids Northshire Ltd", S, "AM", "*", "weight-management physical-activity"),
    P("quit-ready", "Quit Ready Ltd", S, "DB", "*", "stop-smoking"),
    P("slimwell", "Slimwell Coaching Ltd", S, "FW", "*", "weight-management"),
    P("peak-fitness", "Peak Fitness Deanbridge Ltd", S, "DB", "DB", "physical-activity"),
    P("climbing-centre", "Riverside Climbing Centre Ltd", S, "CT", "CT",
      "physical-activity youth-services"),
    P("fenwick-digital", "Fenwick Digital Ltd", S, "FW", "*", "software-services"),
    P("shieldpoint", "ShieldPoint Cyber Ltd", S, "BF", "*", "cyber-security"),
    P("computer-recycling", "Castleton Computer Recycling Ltd", S, "CT", "*",
      "digital-inclusion"),
    P("web-studio", "Brookfield Web Studio Ltd", S, "BF", "BF", "software-services",
      fate="rejected"),
    P("data-services", "Northshire Data Services Ltd", S, "AM", "*",
      "software-services cyber-security", fate="rejected"),
    P("sparkle", "Sparkle Cleaning Services Ltd", S, "CT", "CT FW", "cleaning",
      fate="suspended"),
    P("ashby-grounds", "Ashby Grounds and Gardens Ltd", S, "AM", "AM BF", "grounds-maintenance"),
    P("greenway", "Greenway Landscapes Ltd", S, "EM", "*", "grounds-maintenance"),
    P("taste-catering", "Taste of Northshire Catering Ltd", S, "BF", "*", "catering"),
    P("deanbridge-facilities", "Deanbridge Facilities Ltd", S, "DB", "DB EM", "cleaning"),
    P("a2b-taxis", "A2B Taxis Castleton Ltd", S, "CT", "CT BF", "home-to-school-transport"),
    P("ashby-cars", "Ashby Cars Ltd", S, "AM", "AM", "home-to-school-transport",
      fate="suspended"),
    P("eastmoor-coaches", "Eastmoor Coaches Ltd", S, "EM", "*",
      "home-to-school-transport community-transport", fate="reinstated"),
    P("fenwick-minibus-hire", "Fenwick Minibus Hire Ltd", S, "FW", "FW EM",
      "home-to-school-transport"),
    P("saferide", "SafeRide Northshire Ltd", S, "BF", "*", "home-to-school-transport"),
    P("keystone", "Keystone Lettings and Support Ltd", S, "BF", "*", "tenancy-sustainment"),
    P("homeward", "Homeward Supported Living Ltd", S, "CT", "*", "supported-housing"),
    P("skillbridge", "Skillbridge Training Ltd", S, "CT", "*",
      "adult-learning employment-support"),
    P("next-step", "Next Step Recruitment and Training Ltd", S, "AM", "*", "employment-support"),
    P("evergreen-day", "Evergreen Day Services Ltd", S, "FW", "FW EM", "day-opportunities"),
    P("respite-at-home", "Respite at Home Ltd", S, "DB", "*", "carers-support home-care"),
    P("deanbridge-nursing", "Deanbridge Nursing Agency Ltd", S, "DB", "DB", "home-care",
      fate="rejected"),
    P("active-minds", "Active Minds Tutoring Ltd", S, "AM", "AM", "adult-learning",
      fate="applied"),
    P("mobility-matters", "Mobility Matters Ltd", S, "EM", "*", "community-transport",
      fate="under_review"),
    P("outdoor-learning", "Outdoor Learning Northshire Ltd", S, "FW", "*", "youth-services",
      fate="under_review"),
    P("bakery-kitchen", "Brookfield Bakery and Kitchen Ltd", S, "BF", "BF", "catering"),
    # -- community groups
    P("lunch-club", "Eastmoor Lunch and Friendship Club", C, "EM", "EM", "day-opportunities"),
    P("friends-brookfield-park", "Friends of Brookfield Park", C, "BF", "BF",
      "grounds-maintenance"),
    P("friends-castleton-library", "Friends of Castleton Library", C, "CT", "CT",
      "libraries-culture"),
    P("mens-shed", "Deanbridge Men's Shed", C, "DB", "DB", "day-opportunities"),
    P("fenwick-minibus", "Fenwick Community Minibus", C, "FW", "FW", "community-transport"),
    P("harbour", "Harbour Lived Experience Network", C, "CT", "*", "substance-misuse",
      fate="graduated"),
    P("brookfield-parents-forum", "Brookfield Parents' Forum", C, "BF", "BF",
      "send-short-breaks"),
    P("castleton-walking-group", "Castleton Walking Group", C, "CT", "CT", "physical-activity"),
    P("community-garden", "Eastmoor Community Garden", C, "EM", "EM",
      "physical-activity weight-management", fate="incubating"),
    P("ashby-youth-football", "Ashby Market Youth Football Club", C, "AM", "AM",
      "physical-activity youth-services"),
    P("over-60s", "Fenwick Over-60s Club", C, "FW", "FW", "day-opportunities"),
    P("tenants-association", "Deanbridge Tenants' Association", C, "DB", "DB",
      "tenancy-sustainment"),
    P("parent-carer-forum", "Northshire Parent Carer Forum", C, "BF", "*",
      "send-short-breaks carers-support"),
    P("community-kitchen", "Brookfield Community Kitchen", C, "BF", "BF",
      "catering weight-management"),
    P("repair-cafe", "Castleton Repair Café", C, "CT", "CT", "digital-inclusion",
      fate="incubating"),
    P("eastmoor-young-carers", "Eastmoor Young Carers Group", C, "EM", "EM", "carers-support"),
    P("silver-surfers", "Fenwick Silver Surfers", C, "FW", "FW", "digital-inclusion",
      fate="incubating"),
    P("dementia-cafe", "Ashby Market Dementia Café", C, "AM", "AM", "carers-support"),
    P("street-pastors", "Deanbridge Street Pastors", C, "DB", "DB", "homelessness-prevention"),
    P("tuesday-club", "Castleton Tuesday Club", C, "CT", "CT", "day-opportunities"),
    P("cycling-club", "Brookfield Cycling Club", C, "BF", "BF", "physical-activity",
      fate="applied"),
    P("allotment-society", "Eastmoor Allotment Society", C, "EM", "EM", "physical-activity"),
    P("village-hall", "Fenwick Village Hall Committee", C, "FW", "FW", "libraries-culture",
      fate="under_review"),
    P("refugee-welcome", "Northshire Refugee Welcome", C, "AM", "*", "employment-support",
      fate="applied"),
    P("good-neighbours", "Ashby Market Good Neighbours", C, "AM", "AM",
      "carers-support community-transport"),
    # -- partnerships of other providers in the network (registered after their members)
    P("healthy-futures", "Healthy Futures Northshire Consortium", PT, "AM", "*",
      "weight-management physical-activity",
      members=("leisure-trust", "fitkids", "food-partnership"),
      description="A consortium led by Active Northshire Leisure Trust with FitKids Northshire "
      "and the Northshire Food Partnership, formed to deliver healthy weight programmes."),
    P("homelessness-alliance", "Northshire Homelessness Alliance", PT, "BF", "*",
      "homelessness-prevention tenancy-sustainment supported-housing",
      members=("housing-action", "st-aidans", "fenwick-foyer"),
      description="An alliance of Northshire Housing Action, St Aidan's Night Shelter and "
      "Fenwick Foyer under one alliance agreement and shared outcomes."),
    P("community-transport-partnership", "Eastmoor and Fenwick Community Transport Partnership",
      PT, "EM", "EM FW", "community-transport",
      members=("eastmoor-dial-a-ride", "fenwick-minibus"),
      description="Eastmoor Dial-a-Ride and the Fenwick Community Minibus, sharing vehicles, "
      "drivers and one booking line across the rural east of the county."),
    P("recovery-partnership", "Northshire Recovery Partnership", PT, "CT", "*",
      "substance-misuse",
      members=("recovery-trust", "mental-health-ft", "harbour"),
      description="A joint venture of Northshire Recovery Trust, the mental health foundation "
      "trust and the Harbour Lived Experience Network delivering treatment and recovery."),
)

# ---------------------------------------------------------------------------------- stories


@dataclass(frozen=True)
class Registry:
    """Dates that script a provider's path through onboarding (others are drawn at random)."""

    registered: date
    review: date | None = None
    decided: date | None = None  # approved, rejected, or incubation started
    reason: str | None = None
    milestones: tuple[tuple[str, date, date | None], ...] = ()  # title, due, met on
    support_plan: str | None = None
    graduated: date | None = None
    later: tuple[tuple[date, str, str], ...] = ()  # (on, suspend|reinstate|exit, reason)


REGISTRY_STORIES: dict[str, Registry] = {
    "harbour": Registry(
        date(2023, 10, 3), date(2023, 10, 10), date(2023, 10, 24),
        reason="A peer-led group with strong lived experience but no constitution, policies or "
        "insurance yet: incubate rather than reject.",
        support_plan="Mentoring from Northshire Recovery Trust; help from the Volunteer Centre "
        "with a constitution, safeguarding policy and insurance; accredited peer mentor "
        "training funded by the public health grant.",
        milestones=(
            ("Adopt a constitution and a safeguarding policy", date(2024, 1, 31),
             date(2024, 1, 16)),
            ("Public liability insurance in place", date(2024, 3, 31), date(2024, 3, 5)),
            ("Train ten accredited peer mentors", date(2024, 9, 30), date(2024, 10, 15)),
            ("Run a six-month pilot peer support group", date(2025, 2, 28), date(2025, 2, 25)),
        ),
        graduated=date(2025, 3, 11)),
    "tech4good": Registry(
        date(2023, 8, 14), date(2023, 8, 21), date(2023, 9, 4),
        reason="A new community interest company with a good model for device reuse; needs "
        "support with certification and insurance before it can be commissioned.",
        support_plan="Mentoring from the council's digital team and the Rural Community Council; "
        "support to reach Cyber Essentials; a start-up grant from the market development fund.",
        milestones=(
            ("Public liability insurance in place", date(2023, 10, 31), date(2023, 10, 10)),
            ("Cyber Essentials certification", date(2023, 12, 31), date(2023, 12, 5)),
            ("Refurbish and data-wipe 100 devices to a recognised standard", date(2024, 2, 29),
             date(2024, 2, 13)),
        ),
        graduated=date(2024, 3, 5)),
    "second-chance": Registry(
        date(2023, 11, 20), date(2023, 11, 27), date(2023, 12, 11),
        reason="A social enterprise training people leaving prison as chefs; promising, but "
        "not yet trading at the scale of a council contract.",
        support_plan="Business planning with Castleton Enterprise Trust; food hygiene training; "
        "use of the council's training kitchen at Ashby Market; trial catering for council "
        "events.",
        milestones=(
            ("Food hygiene rating of 5", date(2024, 3, 31), date(2024, 2, 20)),
            ("Public and employer's liability insurance", date(2024, 3, 31), date(2024, 3, 12)),
            ("Cater ten council events as a trial", date(2024, 6, 30), date(2024, 5, 21)),
        ),
        graduated=date(2024, 6, 11)),
    "community-garden": Registry(
        date(2025, 10, 6), date(2025, 10, 13), date(2025, 11, 3),
        reason="Volunteer-run growing project that could host healthy weight sessions; needs "
        "governance and insurance first.",
        support_plan="Support from the Volunteer Centre with governance; a small grant towards "
        "accessible raised beds; introductions to the Healthy Futures consortium.",
        milestones=(
            ("Adopt a constitution and open a bank account", date(2026, 1, 31),
             date(2026, 3, 10)),
            ("Public liability insurance in place", date(2026, 12, 31), None),
            ("Run a twelve-week family growing course", date(2027, 3, 31), None),
        )),
    "repair-cafe": Registry(
        date(2026, 1, 12), date(2026, 1, 19), date(2026, 2, 2),
        reason="Monthly repair café with volunteers who could run device clinics; incubate "
        "towards the digital inclusion network.",
        support_plan="Mentoring from Tech4Good Brookfield CIC, which graduated from incubation "
        "in 2024; safeguarding training; a device-wiping kit.",
        milestones=(
            ("Safeguarding training for all volunteers", date(2026, 4, 30), date(2026, 4, 14)),
            ("Public liability insurance in place", date(2026, 6, 30), date(2026, 7, 21)),
            ("Run twelve device clinics", date(2026, 12, 31), None),
        )),
    "silver-surfers": Registry(
        date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 23),
        reason="Older volunteers teaching older residents to get online in village halls; "
        "needs support to become a constituted group.",
        support_plan="Help from the Rural Community Council with a constitution and insurance; "
        "loan of tablets from the Libraries Mutual.",
        milestones=(
            ("Adopt a constitution", date(2026, 6, 30), date(2026, 9, 8)),
            ("Public liability insurance in place", date(2026, 12, 31), None),
        )),
    "brightwater": Registry(
        date(2023, 4, 11), date(2023, 4, 17), date(2023, 5, 16),
        later=((date(2025, 6, 25), "suspend",
                "CQC rated the service Inadequate (safe, well-led) in June 2025; suspended "
                "from new work pending an improvement plan"),)),
    "ashby-cars": Registry(
        date(2023, 4, 12), date(2023, 4, 18), date(2023, 5, 23),
        later=((date(2026, 5, 19), "suspend",
                "Enhanced DBS checks for six drivers had lapsed; suspended until every driver "
                "is checked again"),)),
    "sparkle": Registry(
        date(2023, 4, 6), date(2023, 4, 13), date(2023, 5, 16),
        later=((date(2026, 8, 11), "suspend",
                "Public liability insurance expired on 31 July 2026 and no renewal has been "
                "evidenced"),)),
    "eastmoor-coaches": Registry(
        date(2023, 4, 13), date(2023, 4, 19), date(2023, 5, 24),
        later=((date(2025, 1, 14), "suspend",
                "Public liability insurance lapsed on 31 December 2024"),
               (date(2025, 2, 4), "reinstate",
                "New insurance certificate received (cover of £10m to 31 January 2026)"))),
    "meadowgate": Registry(
        date(2023, 9, 18), date(2023, 9, 25), date(2023, 10, 24),
        later=((date(2025, 2, 18), "exit",
                "Sold its two Northshire care homes to another operator and no longer delivers "
                "in the county"),)),
    "deanbridge-cca": Registry(
        date(2023, 10, 2), date(2023, 10, 9), date(2023, 11, 14),
        later=((date(2024, 10, 8), "exit",
                "Merged into Age UK Northshire; the charity has been removed from the "
                "register"),)),
    "orchard-catering": Registry(
        date(2023, 4, 4), date(2023, 4, 11), date(2023, 5, 9),
        later=((date(2025, 4, 15), "exit",
                "Withdrew from local authority catering nationally; the exit plan for its "
                "catering contract has been completed"),)),
    "data-services": Registry(
        date(2024, 2, 12), date(2024, 2, 19), date(2024, 3, 12),
        reason="Could not evidence professional indemnity insurance or Cyber Essentials "
        "certification after two requests"),
    "deanbridge-nursing": Registry(
        date(2023, 9, 5), None, date(2023, 9, 26),
        reason="Not registered with the CQC for the regulated activity it applied to deliver "
        "(personal care)"),
    "web-studio": Registry(
        date(2025, 5, 6), date(2025, 5, 13), date(2025, 6, 3),
        reason="Sells web design to businesses and does not deliver public services; referred "
        "to the council's ordinary supplier registration"),
    "active-minds": Registry(date(2026, 9, 28)),
    "cycling-club": Registry(date(2026, 10, 5)),
    "refugee-welcome": Registry(date(2026, 10, 12)),
    "outdoor-learning": Registry(date(2026, 8, 24), date(2026, 9, 1)),
    "mobility-matters": Registry(date(2026, 9, 7), date(2026, 9, 15)),
    "village-hall": Registry(date(2026, 9, 14), date(2026, 9, 22)),
}

# Public liability insurance, where its history matters to the story: (added on, valid from,
# expires on). Others renew yearly, with the odd lapse.
INSURANCE: dict[str, tuple[tuple[date, date, date], ...]] = {
    "eastmoor-coaches": (
        (date(2023, 4, 19), date(2023, 1, 1), date(2023, 12, 31)),
        (date(2023, 12, 18), date(2024, 1, 1), date(2024, 12, 31)),
        (date(2025, 2, 3), date(2025, 2, 1), date(2026, 1, 31)),
        (date(2026, 1, 20), date(2026, 2, 1), date(2027, 1, 31)),
    ),
    "sparkle": (
        (date(2023, 4, 13), date(2022, 8, 1), date(2023, 7, 31)),
        (date(2023, 7, 20), date(2023, 8, 1), date(2024, 7, 31)),
        (date(2024, 7, 18), date(2024, 8, 1), date(2025, 7, 31)),
        (date(2025, 7, 22), date(2025, 8, 1), date(2026, 7, 31)),
    ),
}

# Quality ratings: (scheme, rating, rated on, recorded on)
RATINGS: dict[str, tuple[tuple[str, str, date, date], ...]] = {
    "brightwater": (("CQC", "Good", date(2022, 11, 15), date(2023, 4, 20)),
                    ("CQC", "Requires improvement", date(2024, 10, 8), date(2024, 10, 22)),
                    ("CQC", "Inadequate", date(2025, 6, 10), date(2025, 6, 24))),
    "kindred": (("CQC", "Good", date(2022, 6, 2), date(2023, 4, 24)),
                ("CQC", "Outstanding", date(2025, 3, 4), date(2025, 3, 18))),
    "everbright": (("CQC", "Requires improvement", date(2022, 9, 21), date(2023, 4, 26)),
                   ("CQC", "Good", date(2024, 5, 14), date(2024, 5, 28))),
    "hearthside": (("Ofsted", "Good", date(2022, 3, 9), date(2023, 6, 1)),),
    "little-acorns": (("Ofsted", "Outstanding", date(2023, 1, 18), date(2023, 7, 3)),),
    "short-breaks-trust": (("Ofsted", "Good", date(2023, 2, 7), date(2023, 12, 12)),),
}

# Conflicts of interest declared against a provider: (declared by, interest, on)
CONFLICTS: dict[str, tuple[str, str, date]] = {
    "castleton-youth-trust": (
        "Cllr Helen Marsh", "Trustee of Castleton Youth Trust; left the room for the youth "
        "services decision and took no part in it", date(2023, 7, 20)),
    "keystone": (
        "Tom Hughes (commissioner)", "A family member works for Keystone Lettings and Support as "
        "a support worker; took no part in evaluating the tenancy sustainment bids",
        date(2024, 5, 8)),
    "leisure-trust": (
        "Cllr Peter Grant", "Board member of Active Northshire Leisure Trust, nominated by the "
        "council", date(2023, 6, 1)),
}

# ---------------------------------------------------------------------------------- commissioning


@dataclass(frozen=True)
class Vary:
    on: date
    kind: VariationKind
    reason: str
    change: int = 0  # pounds; or
    pct: float | None = None  # a percentage of the budget at the time (uplifts)
    scope: str | None = None


@dataclass(frozen=True)
class Extend:
    on: date
    new_end: date
    justification: str
    evidence: str
    growth: int  # pounds added for the extra term (a growth variation the same day)


@dataclass(frozen=True)
class Case:
    on: date
    need: str
    outcomes: str
    cost: int
    decided: date | None = None
    approve: bool = True
    reason: str = ""


@dataclass(frozen=True)
class End:
    on: date
    how: EndingKind
    reason: str
    exit_plan_executed: bool = False
    notes: str | None = None


Story = Vary | Extend | Case | End


@dataclass(frozen=True)
class AwardSpec:
    key: str
    title: str
    arrangement: ArrangementType
    providers: tuple[str, ...]
    allocation: int
    starts: date | None = None  # default: the need's
    ends: date | None = None
    reward: tuple[int, int, int] | None = None  # payment-by-results %, bonus max, penalty max
    risk: tuple[int, int] | None = None  # council %, provider %
    story: tuple[Story, ...] = ()
    activate: bool = True


@dataclass(frozen=True)
class DecisionSpec:
    on: date
    maker: str
    rationale: str
    awards: tuple[AwardSpec, ...]


@dataclass(frozen=True)
class OutcomeSpec:
    description: str
    measure: str | None
    target: str
    by: date


@dataclass(frozen=True)
class NeedSpec:
    key: str
    title: str
    area: str
    commissioner: str
    population: str
    population_size: int
    outcomes: tuple[OutcomeSpec, ...]
    outputs: tuple[str, ...]
    budget: int
    starts: date
    ends: date
    defined: date
    options: tuple[SourcingOption, ...]  # the recommended one first
    rationale: str
    engagement: str | None = None
    engaged: date | None = None
    contributions: tuple[tuple[date, str, int, str], ...] = ()
    decisions: tuple[DecisionSpec, ...] = ()
    review: tuple[date, str] | None = None
    close: tuple[date, str] | None = None  # exit stage, then closed a fortnight later
    # The need's own end when it runs past `ends` (its first agreements' term): the strategy it
    # serves, within which those agreements may be extended.
    horizon: date | None = None
    # The council's own top-ups of its envelope: (on, pounds, why, who decided), each a
    # recorded decision.
    top_ups: tuple[tuple[date, int, str, str], ...] = ()
    # The districts the population lives in, where its description names them: "*" for the
    # whole county, else district codes; "" where it names no place.
    where: str = ""

    @property
    def until(self) -> date:
        """The need's end: its horizon, else its first agreements' term's end."""
        return self.horizon or self.ends

    @property
    def options_on(self) -> date:
        return date.fromordinal(self.defined.toordinal() + 21)

    @property
    def areas(self) -> list[str]:
        """The population's areas, named as the providers name the areas they serve."""
        codes = COUNTY_DISTRICTS if self.where == "*" else tuple(self.where.split())
        return [DISTRICTS[d][0] for d in codes]


A = AwardSpec
T = ArrangementType
VK = VariationKind
O = SourcingOption  # noqa: E741 - short alias for the table
FIXED = "Funding for the extended term, at the same monthly rate"
LIVING_WAGE = "Annual uplift for the National Living Wage rise, as the framework provides"

NEEDS: tuple[NeedSpec, ...] = (
    NeedSpec(
        "healthy-weight", "Healthy weight for teenagers", "weight-management", PUBLIC_HEALTH,
        "Young people aged 13 to 17 in Northshire, above all in Eastmoor and Brookfield", 41000,
        (OutcomeSpec("Fewer teenagers living with obesity", "obesity", "from 21.4% to 18%",
                     date(2027, 3, 31)),
         OutcomeSpec("More teenagers physically active for an hour a day", "active",
                     "from 44% to 50%", date(2027, 3, 31))),
        ("12-week family programmes in every secondary school", "Holiday activities with food"),
        1_000_000, date(2023, 10, 2), date(2026, 9, 30), date(2023, 5, 2),
        (O.MIXED, O.FORMAL_CONTRACT, O.IN_HOUSE),
        "Buy the result (lower obesity) from a consortium paid partly by results, with grants "
        "around it for holiday food and sport that local groups already run well.",
        "Two market events at Ashby Market and Eastmoor: twelve providers came; leisure, food "
        "and fitness providers proposed a consortium so no one had to carry the whole risk.",
        date(2023, 6, 27),
        decisions=(DecisionSpec(
            date(2023, 8, 15), "Director of Public Health",
            "The consortium scored highest on outcomes and social value; holiday food and swim "
            "passes go to the organisations already trusted by families.",
            (A("hw-programme", "Healthy Futures teen weight programme", T.FORMAL_CONTRACT,
               ("healthy-futures",), 720_000, reward=(15, 50_000, 30_000), risk=(80, 20),
               story=(
                   Vary(date(2024, 9, 10), VK.GROWTH,
                        "Take-up in Eastmoor schools ran 40% above plan", change=60_000,
                        scope="Extend the programme to Year 7 pupils in Eastmoor and Fenwick"),
                   Case(date(2025, 3, 12), "Family cooking sessions for the parents of "
                        "teenagers on the programme", "Thirty families a term; supports the "
                        "BMI reduction target", 45_000, date(2025, 4, 8), True,
                        "Need and outcomes agreed at the Healthy Weight Board"),
                   Extend(date(2026, 7, 14), date(2027, 9, 30),
                          "Outcomes on track; re-procuring now would break up cohorts mid-year",
                          "Obesity among participating teenagers fell from 21.4% to 19.6% "
                          "(NCMP-linked cohort data); 82% completed the 12 weeks", 240_000),
               )),
             A("hw-holiday-food", "Holiday activities and healthy food", T.GRANT,
               ("food-partnership",), 120_000),
             A("hw-swim", "Teen swim and gym passes", T.CALL_OFF, ("leisure-trust",), 150_000,
               story=(Vary(date(2024, 3, 5), VK.BUDGET_CHANGE,
                           "Lower take-up of gym passes than forecast in 2023/24; the saving "
                           "returns to the healthy weight budget", change=-20_000),)),
             ),
        ),),
        review=(date(2025, 10, 6), "Year-two review: programme on track; holiday food "
                "reached 3,100 children; gym passes under-used and scaled back"),
        where="*",
        horizon=date(2028, 3, 31),  # the Healthy Weight Strategy 2023 to 2028
        top_ups=(
            (date(2024, 9, 3), 80_000, "Public health grant 2024/25 uplift, allocated by the "
             "Director of Public Health to healthy weight: the Year 7 extension in Eastmoor and "
             "Fenwick and family cooking sessions", HEAD_OF_COMMISSIONING),
            (date(2026, 7, 7), 240_000, "Public health grant 2027/28 for the programme's "
             "extended year, in the medium-term financial plan agreed by Council in February "
             "2026", HEAD_OF_COMMISSIONING),
        ),
    ),
    NeedSpec(
        "stop-smoking", "Stop smoking service", "stop-smoking", PUBLIC_HEALTH,
        "Adults who smoke in Northshire, with a focus on routine and manual workers and "
        "pregnant women", 62000,
        (OutcomeSpec("Fewer adults smoking", "smoking", "from 13.1% to 10%", date(2027, 3, 31)),),
        ("4-week quit support", "Specialist clinics", "Support in pregnancy"),
        850_000, date(2023, 7, 3), date(2026, 6, 30), date(2023, 4, 11),
        (O.MIXED, O.FORMAL_CONTRACT, O.FRAMEWORK_CALL_OFF),
        "Pharmacies give reach, the community trust gives specialist support and the VCSE "
        "reaches pregnant smokers: a mix beats a single contract.",
        "Soft-market testing with pharmacies, GP practices and two VCSEs; pharmacies asked "
        "for a simple per-quit payment.", date(2023, 5, 16),
        decisions=(DecisionSpec(
            date(2023, 6, 20), "Director of Public Health",
            "A mixed model: pharmacy call-off, specialist service under an SLA-style contract "
            "with the community trust, and a grant for pregnancy support.",
            (A("ss-pharmacy", "Community pharmacy stop smoking service", T.CALL_OFF,
               ("pharmacies",), 300_000,
               story=(Case(date(2024, 5, 14), "Swap to Stop: free vape starter kits for adult "
                           "smokers in routine and manual jobs", "1,200 quit attempts a year; "
                           "a 4-week quit rate of 55%", 38_000, date(2024, 6, 4), True,
                           "Within the national Swap to Stop allocation; outcomes agreed"),)),
             A("ss-specialist", "Specialist stop smoking service", T.FORMAL_CONTRACT,
               ("nhs-community",), 450_000, reward=(10, 25_000, 15_000), risk=(85, 15),
               story=(
                   Vary(date(2024, 11, 5), VK.SCOPE_CHANGE,
                        "Smokers leaving mental health wards relapse without support",
                        scope="Add a stop smoking offer for mental health inpatients on "
                        "discharge"),
                   Extend(date(2026, 5, 12), date(2027, 6, 30),
                          "Quit rates are the best in the region; extend while the national "
                          "smokefree generation changes settle",
                          "4-week quit rate of 58% against a target of 50%; 2,950 quits in "
                          "2025/26", 150_000),
               )),
             A("ss-pregnancy", "Smokefree pregnancy support", T.GRANT,
               ("smokefree-northshire",), 60_000,
               story=(Case(date(2025, 1, 15), "Shopping vouchers for the partners of pregnant "
                           "smokers who quit", "Forty more smokefree households a year", 15_000,
                           date(2025, 2, 11), False,
                           "No evidence base yet for partner incentives; revisit with the "
                           "results of the regional trial"),)),
             ),
        ),),
        where="*",
        horizon=date(2028, 3, 31),  # the first phase of the Smokefree Northshire 2030 plan
        top_ups=((date(2026, 5, 5), 150_000, "Local Stop Smoking Services and Support Grant "
                  "2026/27 (DHSC) funds the specialist service's extended year",
                  HEAD_OF_COMMISSIONING),),
    ),
    NeedSpec(
        "home-care", "Home care for adults", "home-care", ADULTS,
        "Adults assessed as needing personal care at home", 2300,
        (OutcomeSpec("People leave hospital without waiting for care", "discharges",
                     "from 52 to 30 people a day", date(2027, 3, 31)),
         OutcomeSpec("People stay independent at home after reablement", "reablement",
                     "from 79% to 85%", date(2027, 3, 31))),
        ("Personal care visits", "Complex care packages"),
        8_600_000, date(2023, 10, 2), date(2027, 9, 30), date(2023, 4, 17),
        (O.FRAMEWORK_CALL_OFF, O.FORMAL_CONTRACT, O.IN_HOUSE),
        "Zones with one lead provider each keep travel short and let the council move work "
        "between providers when one struggles.",
        "Provider forum with 19 home care providers; rural rounds in Eastmoor and Fenwick are "
        "the hardest to staff.", date(2023, 6, 7),
        decisions=(DecisionSpec(
            date(2023, 8, 22), "Cabinet Member for Adult Social Care",
            "One lead provider per zone from the framework, chosen on quality (CQC ratings, "
            "references) and price; complex care from a provider with specialist staff.",
            (A("hc-north", "Home care: Ashby Market and Brookfield zone", T.CALL_OFF,
               ("brightwater",), 1_600_000,
               story=(Vary(date(2025, 7, 18), VK.BUDGET_CHANGE,
                           "Terminated: the budget for the rest of the term is released to "
                           "the zones taking on its packages", change=-800_000),
                      End(date(2025, 7, 18), EndingKind.TERMINATED,
                          "Provider suspended after the CQC rated it Inadequate in June 2025; "
                          "terminated under clause 14.2", True,
                          "212 packages of care moved to Kindred Care Services and Willow Tree "
                          "Home Care over three weeks with no missed calls; records returned "
                          "under the data processing agreement"),)),
             A("hc-castleton", "Home care: Castleton zone", T.CALL_OFF, ("kindred",), 1_800_000,
               story=(
                   Vary(date(2024, 4, 9), VK.BUDGET_CHANGE, LIVING_WAGE, pct=4.0),
                   Vary(date(2025, 4, 8), VK.BUDGET_CHANGE, LIVING_WAGE, pct=5.0),
                   Vary(date(2025, 7, 21), VK.GROWTH,
                        "Packages moved from the terminated Brightwater agreement",
                        change=420_000, scope="Take on Brightwater's Ashby Market packages"),
                   Vary(date(2026, 4, 14), VK.BUDGET_CHANGE, LIVING_WAGE, pct=4.0),
               )),
             A("hc-deanbridge", "Home care: Deanbridge zone", T.CALL_OFF, ("willow-tree",),
               1_500_000,
               story=(
                   Vary(date(2024, 4, 9), VK.BUDGET_CHANGE, LIVING_WAGE, pct=4.0),
                   Vary(date(2025, 4, 8), VK.BUDGET_CHANGE, LIVING_WAGE, pct=5.0),
                   Vary(date(2025, 7, 21), VK.GROWTH,
                        "Packages moved from the terminated Brightwater agreement",
                        change=380_000, scope="Take on Brightwater's Brookfield packages"),
               )),
             A("hc-rural", "Home care: Eastmoor and Fenwick rural zone", T.CALL_OFF,
               ("fenwick-homecare",), 1_200_000,
               story=(
                   Case(date(2024, 2, 13), "Rural rounds: pay care workers for travel time "
                        "between visits in Eastmoor", "Unmet hours in Eastmoor cut from 600 to "
                        "under 150 a week", 95_000, date(2024, 3, 5), True,
                        "Unmet need evidenced; cheaper than spot-purchasing"),
                   Vary(date(2024, 4, 9), VK.BUDGET_CHANGE, LIVING_WAGE, pct=4.0),
                   Vary(date(2025, 4, 8), VK.BUDGET_CHANGE, LIVING_WAGE, pct=5.0),
               )),
             A("hc-complex", "Home care: complex care across the county", T.FORMAL_CONTRACT,
               ("everbright",), 2_000_000, reward=(5, 40_000, 40_000), risk=(90, 10),
               story=(
                   Vary(date(2024, 6, 11), VK.SCOPE_CHANGE,
                        "Three people returning from out-of-county placements need it",
                        scope="Add positive behaviour support for people with learning "
                        "disabilities and complex needs"),
                   Case(date(2025, 9, 9), "Night-sitting service for people with dementia",
                        "Fewer crisis admissions at night", 210_000, date(2025, 10, 7), False,
                        "Overlaps the Home First offer; to be considered in the 2026 review"),
               )),
             ),
        ),),
        review=(date(2025, 4, 22), "Annual market position review: capacity recovered in "
                "Castleton; rural zone still short of carers"),
        top_ups=((date(2025, 4, 1), 250_000, "Adult social care precept 2025/26: the National "
                  "Living Wage rises in home care rates, agreed in the council's budget of "
                  "February 2025", HEAD_OF_COMMISSIONING),),
    ),
    NeedSpec(
        "home-first", "Home First: reablement and hospital discharge", "reablement", ADULTS,
        "Older people leaving Northshire General and Castleton Community Hospital", 9000,
        (OutcomeSpec("Fewer people waiting in hospital once they are well enough to leave",
                     "discharges", "from 52 to 30 people a day", date(2026, 12, 31)),
         OutcomeSpec("People at home three months after reablement", "reablement",
                     "from 79% to 85%", date(2026, 12, 31))),
        ("Reablement packages", "Therapy in-reach", "Befriending after discharge"),
        3_000_000, date(2024, 1, 8), date(2026, 12, 31), date(2023, 9, 5),
        (O.MIXED, O.FORMAL_CONTRACT, O.SHARED_SERVICE),
        "Pooled with the ICB through the Better Care Fund: reablement from a specialist "
        "provider, therapy from the community trust, befriending from the VCSE.",
        "Joint event with the ICB for reablement and discharge providers.", date(2023, 10, 17),
        contributions=((date(2023, 9, 19), "NHS Northshire and Westvale Integrated Care Board",
                        1_500_000, "Better Care Fund: NHS contribution pooled under the "
                        "section 75 agreement"),
                       (date(2024, 11, 26), "NHS Northshire and Westvale Integrated Care Board",
                        300_000, "Winter discharge funding 2024/25: forty extra reablement "
                        "packages a month from December to March"),
                       (date(2025, 6, 24), "NHS Northshire and Westvale Integrated Care Board",
                        160_000, "Better Care Fund discharge funding 2025/26: trusted "
                        "assessors for discharges to care homes")),
        decisions=(DecisionSpec(
            date(2023, 11, 28), "Health and Wellbeing Board (Better Care Fund)",
            "Home First model agreed with the ICB; awards on quality and capacity to start in "
            "January before winter peaks.",
            (A("hf-reablement", "Home First reablement service", T.FORMAL_CONTRACT,
               ("enable-northshire",), 2_300_000, reward=(10, 80_000, 40_000), risk=(75, 25),
               story=(
                   Vary(date(2024, 12, 3), VK.GROWTH,
                        "Delayed discharges rose to 58 a day in November", change=300_000,
                        scope="Winter pressures: forty extra packages a month from December "
                        "to March"),
                   Case(date(2025, 6, 10), "Trusted assessors for people discharged to care "
                        "homes", "Discharges to care homes within 48 hours of being ready",
                        160_000, date(2025, 7, 1), True, "Need and outcomes agreed with the "
                        "ICB at the Better Care Fund board"),
               )),
             A("hf-therapy", "Discharge to assess therapy in-reach", T.INFORMAL_SLA,
               ("nhs-community",), 1_250_000),
             A("hf-befriending", "Home from Hospital befriending", T.GRANT,
               ("home-from-hospital",), 240_000),
             A("hf-step-down", "Step-down beds", T.CALL_OFF, ("meadowgate",), 600_000,
               ends=date(2024, 12, 31)),
             ),
        ),),
    ),
    NeedSpec(
        "carers", "Support for unpaid carers", "carers-support", ADULTS,
        "Unpaid carers of all ages in Northshire", 68000,
        (OutcomeSpec("Carers report a better quality of life", "carer-qol", "from 7.1 to 7.8",
                     date(2026, 8, 31)),),
        ("Carers' assessments", "Breaks", "Advice line"),
        1_100_000, date(2023, 9, 4), date(2026, 8, 31), date(2023, 4, 24),
        (O.MIXED, O.VCSE_GRANT, O.IN_HOUSE),
        "A carers' hub under contract with grants for specialist and young carers' support.",
        "Co-design workshops with 60 carers and the carers' organisations.", date(2023, 6, 13),
        decisions=(DecisionSpec(
            date(2023, 7, 25), "Cabinet Member for Adult Social Care",
            "Carers chose the hub model at the co-design workshops.",
            (A("ca-hub", "Northshire carers' hub", T.FORMAL_CONTRACT, ("carers-centre",),
               780_000,
               story=(
                   Vary(date(2024, 10, 1), VK.SCOPE_CHANGE,
                        "Carers waited eleven weeks for a council assessment",
                        change=45_000, scope="Add carers' assessments delegated from the "
                        "council (pilot)"),
                   Extend(date(2026, 6, 16), date(2027, 8, 31),
                          "Delegated assessments working; keep the hub while the carers' "
                          "strategy is refreshed",
                          "Carer-reported quality of life up from 7.1 to 7.6; assessment "
                          "waits down to three weeks", 260_000),
               )),
             A("ca-dementia", "Dementia carers' support groups", T.GRANT,
               ("dementia-support",), 120_000),
             A("ca-young", "Young carers' service", T.GRANT, ("young-carers",), 150_000,
               story=(
                   Case(date(2024, 9, 17), "Young carers in schools: training for 20 "
                        "secondary schools to identify young carers", "200 more young carers "
                        "identified and supported", 18_000, date(2024, 10, 8), True,
                        "Agreed with the schools forum"),
                   Extend(date(2026, 7, 7), date(2027, 8, 31),
                          "Aligns the grant with the school year",
                          "640 young carers supported in 2025/26 against a target of 500",
                          50_000),
               )),
             ),
        ),),
        where="*",
        contributions=((date(2024, 10, 1), "Northshire Schools Forum", 18_000,
                        "Dedicated Schools Grant (central school services block): training "
                        "secondary schools to identify young carers"),),
        horizon=date(2028, 3, 31),  # the carers' strategy 2023 to 2028
        top_ups=((date(2026, 6, 9), 310_000, "Carers' budget for 2026/27 and 2027/28: the hub "
                  "and the young carers' service kept while the carers' strategy is refreshed "
                  "(Cabinet, 2 June 2026)", CABINET),),
    ),
    NeedSpec(
        "day-opportunities", "Day opportunities for adults with learning disabilities",
        "day-opportunities", ADULTS,
        "Adults with learning disabilities living in Northshire", 1900,
        (OutcomeSpec("Fewer people lonely or isolated", "lonely", "from 24% to 18%",
                     date(2027, 3, 31)),),
        ("Day places", "Community activities"),
        2_000_000, date(2024, 4, 1), date(2027, 3, 31), date(2023, 11, 6),
        (O.FRAMEWORK_CALL_OFF, O.VCSE_GRANT, O.IN_HOUSE),
        "Call-offs give people choice between providers; a grant keeps the Deanbridge service "
        "local.", "Listening events with people who use day services and their families.",
        date(2024, 1, 9),
        decisions=(
            DecisionSpec(
                date(2024, 2, 20), "Cabinet Member for Adult Social Care",
                "Providers chosen by the people who use them; a grant for the community-run "
                "Deanbridge service.",
                (A("do-brookfield", "Day opportunities: Brookfield and Ashby Market",
                   T.CALL_OFF, ("brookfield-day-centre",), 700_000),
                 A("do-network", "Day opportunities: county-wide network", T.CALL_OFF,
                   ("ld-network",), 650_000,
                   story=(Vary(date(2025, 5, 13), VK.SCOPE_CHANGE,
                               "Families of people in work asked for sessions outside office "
                               "hours", change=40_000,
                               scope="Add evening and weekend sessions"),)),
                 A("do-deanbridge", "Deanbridge community day service", T.GRANT,
                   ("deanbridge-cca",), 200_000,
                   story=(End(date(2024, 9, 30), EndingKind.EXITED,
                              "Deanbridge Community Care Association merged into Age UK "
                              "Northshire and stopped trading", True,
                              "All 34 people who attend moved to Age UK's service at the same "
                              "venue; staff transferred under TUPE"),)),
                 ),
            ),
            DecisionSpec(
                date(2024, 9, 17), "Cabinet Member for Adult Social Care",
                "Age UK Northshire takes on the Deanbridge service after the merger, so no one "
                "loses their place.",
                (A("do-ageuk", "Deanbridge day service (transferred to Age UK)", T.GRANT,
                   ("ageuk",), 180_000, starts=date(2024, 10, 1)),),
            ),
        ),
        where="*",
    ),
    NeedSpec(
        "homelessness", "Preventing repeat homelessness", "homelessness-prevention", PLACE,
        "Households at risk of homelessness, and people sleeping rough", 4200,
        (OutcomeSpec("Fewer households homeless again within a year", "repeat-homelessness",
                     "from 212 to 150 households a year", date(2026, 9, 30)),
         OutcomeSpec("New tenancies last", "tenancies", "from 71% to 80% sustained six months",
                     date(2026, 9, 30))),
        ("Prevention casework", "Night shelter", "Supported accommodation for young people"),
        3_400_000, date(2023, 10, 2), date(2026, 9, 30), date(2023, 5, 9),
        (O.MIXED, O.FORMAL_CONTRACT, O.VCSE_GRANT),
        "An alliance contract with shared outcomes replaces five separate grants; the winter "
        "shelter stays a grant.",
        "Workshops with housing charities; they proposed an alliance with one set of outcomes.",
        date(2023, 6, 28),
        decisions=(
            DecisionSpec(
                date(2023, 8, 8), "Cabinet Member for Housing and Communities",
                "The alliance model reduces hand-offs between services; payment partly by "
                "results on repeat homelessness.",
                (A("hl-alliance", "Homelessness prevention and resettlement alliance",
                   T.FORMAL_CONTRACT, ("homelessness-alliance",), 2_400_000,
                   reward=(10, 120_000, 60_000), risk=(70, 30),
                   story=(
                       Case(date(2024, 11, 19), "A housing navigator at Northshire General "
                            "for patients with nowhere to go", "No one discharged to the "
                            "street; 120 people a year housed from hospital", 65_000,
                            date(2024, 12, 10), True, "Jointly agreed with the hospital "
                            "discharge team"),
                       Extend(date(2026, 6, 23), date(2027, 9, 30),
                              "Repeat homelessness falling; the alliance is the delivery "
                              "model in the new homelessness strategy",
                              "Repeat homelessness down from 212 to 146 households a year; "
                              "78% of new tenancies sustained six months", 800_000),
                   )),
                 A("hl-shelter", "Winter night shelter 2023/24", T.GRANT, ("st-aidans",),
                   90_000, starts=date(2023, 11, 1), ends=date(2024, 3, 31)),
                 A("hl-foyer", "Supported accommodation for young people", T.CALL_OFF,
                   ("fenwick-foyer",), 600_000,
                   story=(Vary(date(2025, 4, 8), VK.BUDGET_CHANGE,
                               "Two bed spaces closed for refurbishment for the year",
                               change=-30_000),)),
                 ),
            ),
            DecisionSpec(
                date(2024, 9, 10), "Cabinet Member for Housing and Communities",
                "The 2023/24 shelter met its outcomes: fund two more winters.",
                (A("hl-shelter-2", "Winter night shelter 2024 to 2026", T.GRANT, ("st-aidans",),
                   190_000, starts=date(2024, 11, 1), ends=date(2026, 3, 31)),),
            ),
        ),
        review=(date(2025, 9, 30), "Two-year review with the alliance: outcomes on track"),
        horizon=date(2029, 3, 31),  # the homelessness and rough sleeping strategy 2024 to 2029
        top_ups=((date(2026, 6, 16), 720_000, "Homelessness Prevention Grant 2026/27 (MHCLG) "
                  "and the council's 2027/28 homelessness budget for the alliance's extended "
                  "year (Cabinet, 9 June 2026)", CABINET),),
    ),
    NeedSpec(
        "tenancy", "Tenancy sustainment", "tenancy-sustainment", PLACE,
        "New social and private tenants at risk of losing their home", 1500,
        (OutcomeSpec("New tenancies last", "tenancies", "from 71% to 82% sustained six months",
                     date(2027, 6, 30)),),
        ("Tenancy support", "Furniture and white goods"),
        1_000_000, date(2024, 7, 1), date(2027, 6, 30), date(2024, 3, 4),
        (O.MIXED, O.SHARED_SERVICE, O.FORMAL_CONTRACT),
        "Tenancy support under contract, Westvale Homes' service for tenants near the boundary, "
        "and a grant for furniture.", "Soft-market test with landlords and support providers.",
        date(2024, 4, 23),
        decisions=(DecisionSpec(
            date(2024, 5, 21), "Cabinet Member for Housing and Communities",
            "Best quality and price; Westvale Homes already supports tenants who move across "
            "the boundary.",
            (A("tn-support", "Tenancy sustainment service", T.FORMAL_CONTRACT, ("keystone",),
               520_000, reward=(10, 30_000, 20_000), risk=(80, 20),
               story=(Case(date(2026, 9, 22), "Debt advice for tenants in rent arrears",
                           "Arrears cleared for 150 households a year", 48_000),)),
             A("tn-westvale", "Cross-boundary tenancy support (Westvale Homes)",
               T.SHARED_SERVICE, ("westvale-homes",), 250_000,
               story=(Vary(date(2025, 10, 14), VK.SCOPE_CHANGE,
                           "Westvale places households in Northshire temporary accommodation",
                           scope="Add tenants moving from Westvale into Northshire temporary "
                           "accommodation"),)),
             A("tn-furniture", "Furniture and white goods for new tenancies", T.GRANT,
               ("furniture-reuse",), 90_000,
               story=(Case(date(2025, 2, 11), "Starter packs (bedding and kitchen kits) for "
                           "care leavers' first tenancies", "Every care leaver moves into a "
                           "furnished home", 12_000, date(2025, 3, 4), True,
                           "Corporate parenting panel supports it"),)),
             ),
        ),),
    ),
    NeedSpec(
        "combating-drugs", "Northshire Combating Drugs Partnership: treatment and recovery",
        "substance-misuse", PUBLIC_HEALTH,
        "Adults and young people harmed by drugs and alcohol, and their families", 5200,
        (OutcomeSpec("More people complete treatment successfully", "drug-treatment",
                     "from 17% to 24%", date(2028, 3, 31)),
         OutcomeSpec("Fewer people in recovery become homeless again", "repeat-homelessness",
                     "no one leaving treatment to the street", date(2028, 3, 31))),
        ("Treatment places", "Youth diversion", "Recovery housing"),
        1_800_000, date(2024, 4, 2), date(2028, 3, 31), date(2023, 9, 12),
        (O.MIXED, O.FORMAL_CONTRACT, O.IN_HOUSE),
        "The partners pool budgets for one treatment and recovery system rather than each "
        "buying a piece of it.",
        "Joint market event with the police, ICB and Southmere District Council; treatment "
        "providers and housing providers proposed working as a partnership.",
        date(2023, 12, 12),
        contributions=(
            (date(2023, 10, 10), "Southmere District Council", 250_000,
             "Housing-related support for people in recovery"),
            (date(2023, 10, 24), "Northshire Police", 400_000,
             "Office of the Police and Crime Commissioner: reducing drug-related crime"),
            (date(2023, 11, 7), "NHS Northshire and Westvale Integrated Care Board", 600_000,
             "Dual diagnosis and hospital liaison"),
        ),
        decisions=(
            DecisionSpec(
                date(2024, 2, 27), "Northshire Combating Drugs Partnership Board",
                "Pooled decision by the four partners: one recovery partnership under an "
                "outcome-based contract, with youth diversion and recovery housing around it.",
                (A("cd-treatment", "Community treatment and recovery service",
                   T.FORMAL_CONTRACT, ("recovery-partnership",), 2_200_000,
                   reward=(12, 150_000, 75_000), risk=(70, 30),
                   story=(Case(date(2025, 8, 12), "Naloxone supply and training for hostel "
                               "staff", "No drug-related deaths in Northshire hostels", 35_000,
                               date(2025, 9, 2), True, "Agreed by the partnership board after "
                               "two overdoses in hostels"),)),
                 A("cd-youth", "Youth diversion programme", T.GRANT,
                   ("castleton-youth-trust", "brookfield-ypp"), 180_000),
                 A("cd-housing", "Recovery housing", T.CALL_OFF, ("homeward",), 300_000,
                   story=(Vary(date(2025, 11, 4), VK.GROWTH,
                               "Waiting list for recovery housing at twenty people",
                               change=90_000, scope="Six more recovery bed spaces in "
                               "Castleton"),)),
                 ),
            ),
            DecisionSpec(
                date(2025, 5, 13), "Northshire Combating Drugs Partnership Board",
                "The Harbour network graduated from incubation and can now be commissioned "
                "directly for peer mentoring.",
                (A("cd-peers", "Lived experience peer mentoring", T.GRANT, ("harbour",), 60_000,
                   starts=date(2025, 6, 2), ends=date(2027, 3, 31)),),
            ),
        ),
        review=(date(2025, 4, 15), "First-year review by the partnership board: completions "
                "up from 17% to 20%"),
    ),
    NeedSpec(
        "youth", "Positive activities for young people", "youth-services", CHILDREN,
        "Young people aged 11 to 19 in Castleton, Deanbridge and Ashby Market", 14000,
        (OutcomeSpec("Fewer young people not in education, employment or training", "neet",
                     "from 5.8% to 4.5%", date(2026, 8, 31)),),
        ("Youth club sessions", "Detached youth work", "Holiday sessions"),
        600_000, date(2023, 9, 4), date(2026, 8, 31), date(2023, 5, 15),
        (O.VCSE_GRANT, O.IN_HOUSE, O.FORMAL_CONTRACT),
        "Local youth organisations already have young people's trust; grants keep them "
        "independent.", "Youth council consultation and a funding fair.", date(2023, 7, 4),
        decisions=(DecisionSpec(
            date(2023, 7, 25), "Cabinet Member for Children and Families",
            "Grants to the organisations young people chose.",
            (A("yo-castleton", "Castleton youth clubs and detached youth work", T.GRANT,
               ("castleton-youth-trust",), 200_000,
               story=(
                   Vary(date(2024, 9, 3), VK.GROWTH,
                        "Police reported rising antisocial behaviour in the town centre",
                        change=18_000, scope="Detached youth work in Castleton town centre on "
                        "Friday nights"),
                   Extend(date(2026, 6, 30), date(2027, 8, 31),
                          "Keep provision open while the youth strategy is refreshed",
                          "Attendance up 35%; NEET rate in Castleton down from 6.4% to 5.1%",
                          70_000),
               )),
             A("yo-deanbridge", "Deanbridge open-access youth club", T.GRANT,
               ("deanbridge-club",), 150_000,
               story=(Extend(date(2026, 6, 30), date(2027, 8, 31),
                             "Keep provision open while the youth strategy is refreshed",
                             "Average 85 young people a week; three apprenticeships through "
                             "club volunteering", 52_000),)),
             A("yo-football", "Ashby Market holiday football sessions", T.INFORMAL_SLA,
               ("ashby-youth-football",), 24_000),
             ),
        ),),
        where="CT DB AM",
        horizon=date(2028, 3, 31),  # the youth strategy being refreshed
    ),
    NeedSpec(
        "early-help", "Early help for families", "early-help", CHILDREN,
        "Families with children who need support before problems escalate", 6500,
        (OutcomeSpec("Fewer families referred to children's social care again",
                     "rereferrals", "from 24% to 18%", date(2026, 12, 31)),),
        ("Family support casework", "Parenting programmes"),
        2_000_000, date(2024, 1, 8), date(2026, 12, 31), date(2023, 9, 18),
        (O.MIXED, O.FORMAL_CONTRACT, O.IN_HOUSE),
        "An outcome-based family support contract with grants for parenting and a call-off for "
        "intensive support.", "Provider briefing with eleven organisations.", date(2023, 11, 7),
        decisions=(DecisionSpec(
            date(2023, 11, 21), "Cabinet Member for Children and Families",
            "Best outcomes and social value.",
            (A("eh-family", "Family support service", T.FORMAL_CONTRACT,
               ("family-support-trust",), 1_300_000, reward=(8, 50_000, 30_000), risk=(85, 15),
               story=(Case(date(2025, 11, 18), "Reducing parental conflict programme",
                           "Fewer children exposed to conflict between parents", 75_000,
                           date(2025, 12, 9), False,
                           "Covered by the national programme from April 2026"),)),
             A("eh-parenting", "Parenting programmes for under-fives", T.GRANT,
               ("little-steps",), 220_000),
             A("eh-intensive", "Intensive family support on the edge of care", T.CALL_OFF,
               ("brightstart",), 300_000,
               story=(Vary(date(2025, 1, 21), VK.GROWTH,
                           "Twelve more families a year kept out of care", change=120_000),)),
             ),
        ),),
    ),
    NeedSpec(
        "short-breaks", "Short breaks for disabled children", "send-short-breaks", CHILDREN,
        "Disabled children and their families", 2100,
        (OutcomeSpec("Parent carers report a better quality of life", "carer-qol",
                     "from 6.4 to 7.2", date(2027, 3, 31)),),
        ("Overnight breaks", "Holiday play", "Saturday clubs"),
        1_300_000, date(2024, 4, 2), date(2027, 3, 31), date(2023, 11, 27),
        (O.FRAMEWORK_CALL_OFF, O.VCSE_GRANT, O.IN_HOUSE),
        "Parents want choice: call-offs from approved providers, and the parents' forum's own "
        "club under an informal agreement.",
        "Co-production sessions with the parent carer forum.", date(2024, 1, 30),
        decisions=(DecisionSpec(
            date(2024, 2, 27), "Cabinet Member for Children and Families",
            "Co-produced with parent carers.",
            (A("sb-overnight", "Overnight and day short breaks", T.CALL_OFF,
               ("short-breaks-trust",), 600_000,
               story=(Case(date(2026, 9, 15), "Weekend overnight breaks for 16 to 18 year "
                           "olds moving to adult services", "Smoother transition for 25 young "
                           "people a year", 85_000),)),
             A("sb-adventure", "Holiday adventure play for disabled children", T.CALL_OFF,
               ("adventure-play",), 350_000,
               story=(Case(date(2025, 3, 18), "Autism-friendly sessions in Eastmoor",
                           "Sixty autistic children a year attend holiday play", 40_000,
                           date(2025, 4, 8), True, "Parents' top request"),)),
             A("sb-saturday", "Parent-led Saturday club", T.INFORMAL_SLA,
               ("brookfield-parents-forum",), 12_000),
             ),
        ),),
    ),
    NeedSpec(
        "community-transport", "Community transport for older and disabled residents",
        "community-transport", PLACE,
        "Older and disabled residents without a car, above all in rural areas", 11000,
        (OutcomeSpec("Fewer people lonely because they cannot get out", "lonely",
                     "from 24% to 20%", date(2026, 6, 30)),),
        ("Dial-a-ride trips", "Volunteer car scheme"),
        700_000, date(2023, 7, 3), date(2026, 6, 30), date(2023, 4, 20),
        (O.VCSE_GRANT, O.FORMAL_CONTRACT, O.IN_HOUSE),
        "Grants to community transport operators who use volunteers and already know their "
        "passengers.", "Meeting with community transport operators.", date(2023, 5, 30),
        decisions=(DecisionSpec(
            date(2023, 6, 27), "Cabinet Member for Environment and Transport",
            "Grant funding for the partnership of rural operators and the Ashby Market scheme.",
            (A("ct-rural", "Rural dial-a-ride", T.GRANT, ("community-transport-partnership",),
               420_000,
               story=(Extend(date(2026, 5, 19), date(2027, 6, 30),
                             "Passenger numbers up; no other operator covers the rural east",
                             "41,000 trips in 2025/26, up from 29,000; 94% of passengers say "
                             "they get out more", 145_000),)),
             A("ct-ashby", "Ashby Market community car scheme", T.GRANT,
               ("ashby-community-transport",), 180_000),
             ),
        ),),
        horizon=date(2028, 3, 31),  # the local transport plan's bus service improvement plan
        top_ups=((date(2026, 5, 12), 45_000, "Bus Service Improvement Plan grant 2026/27 "
                  "(Department for Transport) for the rural dial-a-ride's extended year",
                  HEAD_OF_COMMISSIONING),),
    ),
    NeedSpec(
        "school-transport", "Home to school transport", "home-to-school-transport", PLACE,
        "Pupils entitled to free home to school transport, including pupils with SEND", 4800,
        (OutcomeSpec("Every entitled pupil arrives on time and safely", "journeys",
                     "99% of journeys on time; no safeguarding incidents", date(2026, 8, 31)),),
        ("School routes", "Passenger assistants"),
        5_500_000, date(2023, 9, 4), date(2026, 8, 31), date(2023, 4, 5),
        (O.FRAMEWORK_CALL_OFF, O.FORMAL_CONTRACT, O.IN_HOUSE),
        "Routes called off from the dynamic purchasing system; large-vehicle routes under one "
        "contract.", "Operator briefing with 23 taxi and coach operators.", date(2023, 5, 10),
        decisions=(DecisionSpec(
            date(2023, 6, 28), "Cabinet Member for Environment and Transport",
            "Lowest compliant prices per route after safety and quality checks.",
            (A("st-castleton", "School routes: Castleton and Brookfield", T.CALL_OFF,
               ("a2b-taxis",), 900_000,
               story=(Vary(date(2026, 5, 26), VK.GROWTH,
                           "Routes moved from the terminated Ashby Cars call-off",
                           change=60_000, scope="Take on the Ashby Market school routes"),)),
             A("st-ashby", "School routes: Ashby Market", T.CALL_OFF, ("ashby-cars",), 700_000,
               story=(End(date(2026, 5, 22), EndingKind.TERMINATED,
                          "Provider suspended: enhanced DBS checks for six drivers had lapsed",
                          True, "Routes re-allocated to A2B Taxis and SafeRide under the "
                          "call-off; parents told the same day"),)),
             A("st-send", "SEND transport with passenger assistants", T.CALL_OFF,
               ("saferide",), 1_100_000,
               story=(Extend(date(2026, 7, 21), date(2027, 8, 31),
                             "Keep routes stable for SEND pupils while the travel policy is "
                             "reviewed", "No safeguarding incidents; 99.4% of journeys on "
                             "time", 380_000),)),
             A("st-coaches", "Large-vehicle school routes", T.FORMAL_CONTRACT, ("roadlink",),
               1_800_000,
               story=(
                   Vary(date(2024, 1, 16), VK.BUDGET_CHANGE,
                        "Fuel price adjustment under clause 9", change=95_000),
                   Extend(date(2026, 7, 21), date(2027, 8, 31),
                          "Re-tender alongside the new travel policy in 2027",
                          "99.1% of journeys on time; two complaints in three years", 600_000),
               )),
             ),
        ),),
        horizon=date(2028, 8, 31),  # until the home to school travel policy review is done
        top_ups=((date(2026, 7, 14), 140_000, "Home to school transport: the 2026/27 pressure "
                  "on SEND and large-vehicle routes, funded from the corporate contingency "
                  "(Cabinet, 14 July 2026)", CABINET),),
    ),
    NeedSpec(
        "digital-inclusion", "Digital inclusion", "digital-inclusion", DIGITAL,
        "Adults without the skills, device or connection to get online", 52000,
        (OutcomeSpec("Fewer adults lacking basic digital skills", "digital", "from 14% to 11%",
                     date(2026, 5, 31)),),
        ("Digital help points", "Refurbished devices"),
        300_000, date(2024, 6, 3), date(2026, 5, 29), date(2024, 2, 5),
        (O.VCSE_GRANT, O.IN_HOUSE, O.FRAMEWORK_CALL_OFF),
        "Libraries and a community interest company already reach the people who are "
        "offline.", "Round table with libraries, colleges and community groups.",
        date(2024, 3, 26),
        decisions=(DecisionSpec(
            date(2024, 5, 7), "Chief Digital Officer",
            "Grants to the libraries mutual and to Tech4Good, which graduated from the "
            "council's incubation programme in March.",
            (A("di-libraries", "Digital help points in libraries", T.GRANT,
               ("libraries-mutual",), 150_000),
             A("di-devices", "Device lending and refurbishment", T.GRANT, ("tech4good",),
               60_000),
             ),
        ),),
        close=(date(2026, 6, 9), "Outcomes met: adults lacking basic digital skills down from "
               "14% to 11%; help points are now part of the libraries' core offer"),
    ),
    NeedSpec(
        "cyber", "Shared IT security and hosting", "cyber-security", DIGITAL,
        "The council's 5,400 staff and the services that depend on its systems", 5400,
        (OutcomeSpec("Serious cyber incidents contained within four hours", None,
                     "every serious incident contained within four hours", date(2028, 6, 30)),),
        ("Security operations centre", "Hosting", "Penetration tests"),
        2_200_000, date(2023, 7, 3), date(2028, 6, 30), date(2023, 4, 13),
        (O.SHARED_SERVICE, O.FORMAL_CONTRACT, O.IN_HOUSE),
        "Westvale's security operations centre already protects three councils and the "
        "police; joining it is quicker and cheaper than procuring.",
        "Demonstrations by Westvale and two commercial providers.", date(2023, 5, 24),
        decisions=(DecisionSpec(
            date(2023, 6, 21), "Chief Digital Officer",
            "Shared service with Westvale; penetration testing from an SME on the framework.",
            (A("it-shared", "Shared security operations centre and hosting (Westvale)",
               T.SHARED_SERVICE, ("westvale-shared",), 1_500_000,
               story=(Case(date(2024, 10, 15), "Cyber Essentials Plus support for 40 "
                           "maintained schools", "Every maintained school certified by "
                           "2026", 85_000, date(2024, 11, 5), True,
                           "Agreed with the schools forum; schools contribute half"),)),
             A("it-pentest", "Penetration testing and incident response", T.CALL_OFF,
               ("shieldpoint",), 400_000,
               story=(Vary(date(2025, 2, 4), VK.SCOPE_CHANGE,
                           "Phishing is the most common way in",
                           scope="Add phishing simulations for all council staff"),)),
             ),
        ),),
    ),
    NeedSpec(
        "leisure", "Leisure centres", "leisure-centres", PLACE,
        "Residents using the council's four leisure centres", 310000,
        (OutcomeSpec("More adults physically active", "active", "from 61% to 66%",
                     date(2028, 9, 30)),),
        ("Leisure centre operation", "Free swimming for children"),
        4_800_000, date(2023, 10, 2), date(2028, 9, 30), date(2023, 4, 27),
        (O.FORMAL_CONTRACT, O.IN_HOUSE, O.SHARED_SERVICE),
        "A five-year contract with break clauses (not a ten-year deal) with the charitable "
        "leisure trust; Eastmoor pool separately.",
        "Market sounding with three leisure operators.", date(2023, 6, 15),
        decisions=(DecisionSpec(
            date(2023, 7, 18), "Cabinet Member for Communities",
            "The trust reinvests any surplus in the centres; risk on energy shared.",
            (A("lc-trust", "Leisure centres (Ashby Market, Castleton, Deanbridge)",
               T.FORMAL_CONTRACT, ("leisure-trust",), 4_000_000,
               reward=(5, 60_000, 60_000), risk=(60, 40),
               story=(Vary(date(2023, 12, 12), VK.BUDGET_CHANGE,
                           "Energy costs 38% above the tender assumption, shared under the "
                           "risk-share clause", change=250_000),)),
             A("lc-eastmoor", "Eastmoor pool management", T.CALL_OFF, ("greystone",), 600_000,
               story=(Vary(date(2025, 6, 17), VK.SCOPE_CHANGE,
                           "Summer swimming for children who cannot swim 25 metres",
                           change=25_000,
                           scope="Free swimming for under-16s in school holidays"),)),
             ),
        ),),
        top_ups=((date(2023, 12, 5), 80_000, "Energy price contingency reserve: the council's "
                  "share of the leisure trust's energy overrun under the risk-share clause",
                  HEAD_OF_COMMISSIONING),),
    ),
    NeedSpec(
        "active-communities", "Active communities", "physical-activity", PUBLIC_HEALTH,
        "Inactive adults in Castleton and Eastmoor", 23000,
        (OutcomeSpec("More adults physically active", "active", "from 61% to 64%",
                     date(2026, 3, 31)),),
        ("Walking groups", "Park activity sessions"),
        300_000, date(2024, 4, 2), date(2026, 3, 31), date(2024, 1, 15),
        (O.VCSE_GRANT, O.INFORMAL_SLA, O.IN_HOUSE),
        "Small grants and informal agreements with groups already active in their areas.",
        None, None,
        decisions=(DecisionSpec(
            date(2024, 3, 19), "Director of Public Health",
            "Small awards to established local groups.",
            (A("ac-sport", "Active Northshire community programme", T.GRANT,
               ("sport-partnership",), 150_000),
             A("ac-walking", "Castleton walking for health", T.INFORMAL_SLA,
               ("castleton-walking-group",), 6_000),
             A("ac-parks", "Eastmoor parks activity programme", T.INFORMAL_SLA,
               ("eastmoor-town-council",), 24_000),
             ),
        ),),
        close=(date(2026, 4, 14), "Programme complete; community activity now funded through "
               "the Active Northshire grants scheme"),
        where="CT EM",
    ),
    NeedSpec(
        "employment", "Employment support for disabled people and care leavers",
        "employment-support", DIGITAL,
        "Disabled adults and care leavers who want to work", 3100,
        (OutcomeSpec("More disabled adults in paid work", "disabled-employment",
                     "from 53% to 58%", date(2027, 8, 31)),
         OutcomeSpec("Fewer care leavers not in education, employment or training", "neet",
                     "from 38% to 30% of care leavers", date(2027, 8, 31))),
        ("Job coaching", "Work placements", "Supported internships"),
        1_200_000, date(2024, 9, 2), date(2027, 8, 31), date(2024, 5, 13),
        (O.MIXED, O.FORMAL_CONTRACT, O.SHARED_SERVICE),
        "Paid partly by job outcomes; a grant for care leavers; supported internships with "
        "the college.", "Provider day with eight employment support providers.",
        date(2024, 6, 25),
        decisions=(
            DecisionSpec(
                date(2024, 7, 23), "Cabinet Member for Skills and the Economy",
                "Outcome-based contract for disabled people's employment support; grant for "
                "care leavers.",
                (A("em-disabled", "Employment support for disabled people", T.FORMAL_CONTRACT,
                   ("pathway-employment",), 700_000, reward=(20, 60_000, 30_000),
                   risk=(70, 30),
                   story=(Vary(date(2025, 9, 16), VK.SCOPE_CHANGE,
                               "Referrals from NHS talking therapies were being turned away",
                               scope="Include people with mental health conditions referred "
                               "by NHS talking therapies"),)),
                 A("em-care-leavers", "Care leavers into work", T.GRANT,
                   ("northshire-works",), 200_000),
                 ),
            ),
            DecisionSpec(
                date(2026, 9, 8), "Cabinet Member for Skills and the Economy",
                "Supported internships with Northshire College from November 2026.",
                (A("em-internships", "Supported internships", T.SHARED_SERVICE, ("college",),
                   180_000, starts=date(2026, 11, 2), activate=False),),
            ),
        ),
    ),
    NeedSpec(
        "facilities", "Cleaning, grounds and catering for council buildings", "facilities",
        PLACE, "Staff and visitors at 64 council buildings and parks", 64,
        (OutcomeSpec("Buildings and parks clean, safe and well kept", "audits",
                     "95% of quality audits passed", date(2026, 6, 30)),
         OutcomeSpec("More local and social enterprise suppliers", None,
                     "30% of facilities spend with local SMEs and VCSEs", date(2026, 6, 30))),
        ("Cleaning", "Grounds maintenance", "Catering"),
        4_000_000, date(2023, 7, 3), date(2026, 6, 30), date(2023, 4, 4),
        (O.MIXED, O.FORMAL_CONTRACT, O.IN_HOUSE),
        "Smaller lots instead of one facilities contract, so local SMEs and social enterprises "
        "can bid.", "Meet-the-buyer day with 31 suppliers.", date(2023, 5, 3),
        decisions=(
            DecisionSpec(
                date(2023, 5, 30), "Cabinet Member for Resources",
                "Five lots awarded on quality, price and social value.",
                (A("fm-cleaning", "Cleaning of council buildings", T.FORMAL_CONTRACT,
                   ("calder",), 1_500_000,
                   story=(Extend(date(2026, 5, 12), date(2027, 6, 30),
                                 "Audit scores high; align with the new estate strategy",
                                 "97% of quality audits passed; living wage paid throughout",
                                 520_000),)),
                 A("fm-catering", "Civic and school catering", T.FORMAL_CONTRACT,
                   ("orchard-catering",), 1_200_000,
                   story=(Vary(date(2025, 3, 31), VK.BUDGET_CHANGE,
                               "Exit agreed: the budget for the rest of the term is released "
                               "(school kitchens return to the council; civic catering re-let "
                               "as a smaller lot)", change=-430_000),
                          End(date(2025, 3, 31), EndingKind.EXITED,
                              "Orchard Catering Group withdrew from local authority catering "
                              "nationally; both parties agreed an early exit", True,
                              "Civic catering moved to Second Chance Catering CIC from 1 April "
                              "2025; school kitchens returned to the council; equipment "
                              "inventory handed back"),)),
                 A("fm-grounds", "Grounds maintenance", T.CALL_OFF, ("greenway",), 600_000,
                   story=(Vary(date(2024, 3, 12), VK.GROWTH,
                               "Biodiversity duty", change=40_000,
                               scope="Add verge cutting for wildflower corridors"),)),
                 A("fm-pavilions", "Community care of Brookfield park pavilions",
                   T.INFORMAL_SLA, ("friends-brookfield-park",), 6_000),
                 A("fm-offices", "Office cleaning: Castleton and Fenwick", T.CALL_OFF,
                   ("sparkle",), 300_000),
                 ),
            ),
            DecisionSpec(
                date(2025, 2, 18), "Cabinet Member for Resources",
                "Civic catering re-let as a smaller lot after Orchard's exit; Second Chance "
                "Catering graduated from incubation and scored highest.",
                (A("fm-civic-catering", "Civic catering (social enterprise lot)",
                   T.FORMAL_CONTRACT, ("second-chance",), 260_000, starts=date(2025, 4, 1),
                   ends=date(2027, 3, 31)),),
            ),
        ),
        horizon=date(2028, 3, 31),  # aligned with the council's estate strategy
    ),
    # Needs still being sourced: the pipeline.
    NeedSpec(
        "care-leavers-housing", "Supported housing for care leavers", "supported-housing",
        CHILDREN, "Young people leaving care aged 18 to 21", 240,
        (OutcomeSpec("Care leavers keep their first home", "tenancies",
                     "90% of tenancies sustained six months", date(2029, 3, 31)),),
        ("Supported flats", "Floating support"),
        900_000, date(2027, 4, 1), date(2030, 3, 31), date(2026, 7, 6),
        (O.MIXED, O.FORMAL_CONTRACT, O.SHARED_SERVICE),
        "Likely a mix of supported flats and floating support; to be tested with the market.",
        "Market engagement event with eight housing providers and two housing associations.",
        date(2026, 9, 15),
    ),
    NeedSpec(
        "rural-loneliness", "Tackling loneliness in rural communities", "day-opportunities",
        ADULTS, "Older people living alone in Eastmoor and Fenwick villages", 6800,
        (OutcomeSpec("Fewer older people lonely", "lonely", "from 27% to 22%",
                     date(2029, 3, 31)),),
        ("Lunch clubs", "Befriending"),
        250_000, date(2027, 4, 1), date(2029, 3, 31), date(2026, 9, 28),
        (), "",
        where="EM FW",
    ),
)


@dataclass(frozen=True)
class LessonSpec:
    on: date
    need: str
    award: str | None
    stage: str
    went: str
    what: str
    why: str
    tags: tuple[str, ...] = field(default_factory=tuple)


LESSONS: tuple[LessonSpec, ...] = (
    LessonSpec(date(2025, 8, 5), "home-care", "hc-north", "management", "badly",
               "Warning signs at Brightwater (late calls, complaints, staff turnover) were in "
               "three different teams' data for a year before the CQC inspection.",
               "Contract monitoring, safeguarding and complaints were not looked at together.",
               ("quality", "care-market", "monitoring")),
    LessonSpec(date(2025, 8, 5), "home-care", "hc-north", "exit", "well",
               "The exit plan moved 212 packages in three weeks with no missed calls.",
               "Zone contracts named a fallback provider and the exit plan was rehearsed at "
               "mobilisation.", ("exit-plan", "care-market")),
    LessonSpec(date(2025, 10, 20), "healthy-weight", "hw-programme", "management", "well",
               "A 15% payment-by-results share kept the consortium focused on BMI outcomes "
               "rather than session counts.",
               "Outcome data came from the NCMP cohort, which both sides trusted.",
               ("outcomes", "payment-by-results")),
    LessonSpec(date(2025, 10, 1), "homelessness", "hl-alliance", "review", "well",
               "The alliance cut hand-offs: one case worker follows a household from "
               "prevention to resettlement.", "Shared outcomes and one budget removed the "
               "incentive to pass people on.", ("alliance", "outcomes")),
    LessonSpec(date(2025, 5, 20), "facilities", "fm-catering", "exit", "well",
               "Splitting catering into smaller lots after Orchard's exit let a social "
               "enterprise we had incubated win the civic lot.",
               "Market-making: incubation had prepared Second Chance Catering to bid.",
               ("market-making", "social-value", "incubation")),
    LessonSpec(date(2024, 1, 23), "cyber", "it-shared", "mobilisation", "well",
               "Joining Westvale's security operations centre took ten weeks, against an "
               "estimated nine months to procure.",
               "A shared service between public bodies needed no tender and reused proven "
               "tooling.", ("shared-service", "collaboration")),
    LessonSpec(date(2026, 6, 2), "school-transport", "st-ashby", "management", "badly",
               "Lapsed DBS checks for six drivers went unnoticed for four months.",
               "Renewal dates were held by the operator, not in the registry; the registry now "
               "records safeguarding checks with their expiry.", ("safeguarding", "monitoring")),
    LessonSpec(date(2024, 3, 26), "combating-drugs", None, "objectives", "badly",
               "Agreeing a pooled budget with the police, ICB and district council took five "
               "months of governance.", "Each partner needed its own board approval; a standing "
               "pooled-budget agreement would have saved time.",
               ("collaboration", "pooled-budget", "governance")),
    LessonSpec(date(2025, 4, 22), "combating-drugs", "cd-treatment", "decision", "well",
               "One outcomes framework for four partners meant the provider reported once.",
               "Outcomes were agreed before the money was pooled.",
               ("collaboration", "outcomes")),
    LessonSpec(date(2024, 11, 5), "day-opportunities", "do-deanbridge", "exit", "badly",
               "The council heard about the Deanbridge charity's merger six weeks before it "
               "stopped trading.", "Grant conditions did not ask for notice of governance "
               "changes; they now ask for three months'.", ("grants", "exit-plan")),
    LessonSpec(date(2025, 5, 6), "short-breaks", "sb-adventure", "management", "well",
               "Autism-friendly holiday sessions filled within a week.",
               "The business case came from parents at the co-production group.",
               ("co-production", "business-case")),
    LessonSpec(date(2026, 6, 16), "digital-inclusion", None, "exit", "well",
               "Libraries worked as digital help points and the offer became core library "
               "business.", "Trusted, local, open six days a week.", ("libraries", "exit")),
    LessonSpec(date(2024, 2, 6), "leisure", "lc-trust", "management", "badly",
               "Energy costs 38% above the tender assumption needed a £250,000 variation in "
               "the first winter.", "The risk share covered it, but the tender model assumed "
               "2022 prices.", ("risk-share", "energy")),
    LessonSpec(date(2024, 1, 9), "stop-smoking", "ss-pharmacy", "mobilisation", "badly",
               "Only 9 of 31 pharmacies delivered quits in the first six months.",
               "Pharmacists had no time for training; a pharmacy champion fixed it.",
               ("mobilisation", "primary-care")),
)
